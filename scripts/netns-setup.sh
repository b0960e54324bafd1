#!/bin/sh
# Network set-up for the multicast tests, run INSIDE a fresh private network namespace
# (netns-test.sh does `unshare -n` first). Nothing here touches the host's interfaces.
#
# - lo up with multicast on and routes for 224.0.0.0/4 and ff00::/8 (Twisted MC-5);
# - a veth pair mc0 <-> mc1 (10.77.0.1 and .3 on mc0, 10.77.0.2 on mc1) with 239.77.0.0/16 routed out of
#   mc0: a real "wire", needed where lo cannot tell things apart (lo loops every multicast
#   datagram back whatever IP_MULTICAST_LOOP says, so only a veth shows loopback off).
set -eu
ip link set lo up
ip link set lo multicast on
ip route add 224.0.0.0/4 dev lo
ip -6 route add ff00::/8 dev lo
# No duplicate-address detection (set before the veth exists, which copies the default):
# IPv6 link-local addresses are usable at once.
sysctl -q -w net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
# Both ends of the wire are ours, so a datagram arrives from one of our own addresses: accept
# it rather than drop it as a martian, and do not filter by reverse path.
sysctl -q -w net.ipv4.conf.all.accept_local=1 net.ipv4.conf.default.accept_local=1
sysctl -q -w net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
ip link add mc0 type veth peer name mc1
ip addr add 10.77.0.1/24 dev mc0
# A second source on the same wire, for source-specific joins.
ip addr add 10.77.0.3/24 dev mc0
ip addr add 10.77.0.2/24 dev mc1
ip link set mc0 multicast on up
ip link set mc1 multicast on up
ip route add 239.77.0.0/16 dev mc0
