//! Where a connection's thread sleeps: one `poll(2)` over its socket and its wake-up descriptor.
//!
//! A thread here watches exactly one socket, so a `poll(2)` of two descriptors is all the event
//! machinery it needs. It costs one system call per sleep, where a `polling::Poller` costs
//! five on Linux (arming its timerfd twice, `epoll_wait`, then draining and re-arming its
//! notification eventfd), and two descriptors per connection instead of four. Because `poll`
//! is level-triggered, the driver may take a short read or write as "drained" and sleep at
//! once: data (or an end of stream) that is still waiting makes the next `poll` return
//! immediately, so there is no need to read until `WouldBlock` as edge triggering requires.

use std::cell::Cell;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec};

/// Wakes the thread that owns it out of [`sleep`]; shared with mailboxes and stop flags.
///
/// Notifying is cheap when repeated: only the first notification after a wake-up touches the
/// descriptor, the rest see the `pending` flag and return.
pub(crate) struct Wakeup {
    fd: WakeFd,
    /// Set by the first [`notify`](Self::notify) after the last [`clear`](Self::clear).
    pending: AtomicBool,
    /// Identifies this wake-up for [`Owner`].
    id: usize,
    /// Set by a notification from the owner's own thread while it drives its loop (see
    /// [`Owner`]); only that thread touches it.
    own: AtomicBool,
}

/// Wake-up ids; 0 means none.
static NEXT_WAKEUP: AtomicUsize = AtomicUsize::new(1);

thread_local! {
    /// The wake-up whose owner's loop this thread is running (0: none).
    static DRIVING: Cell<usize> = const { Cell::new(0) };
}

/// Marks the current thread as the owner of a wake-up while it drives its loop (until
/// dropped).
///
/// A relay's two legs run on one thread and post to each other's mailboxes, which notify that
/// same thread's wake-up: a notification the thread sends itself needs no descriptor (the
/// thread is not asleep, and looks at its mailboxes before it sleeps), so it only raises a
/// flag that the next [`sleep_many`] finds, and returns at once, instead of costing an
/// eventfd write, a `poll` that returns at once and an eventfd read.
pub(crate) struct Owner {
    previous: usize,
}

impl Owner {
    pub(crate) fn new(wakeup: &Wakeup) -> Self {
        Owner {
            previous: DRIVING.with(|driving| driving.replace(wakeup.id)),
        }
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        DRIVING.with(|driving| driving.set(self.previous));
    }
}

impl Wakeup {
    /// A wake-up with nothing pending.
    pub(crate) fn new() -> io::Result<Self> {
        Ok(Wakeup {
            fd: WakeFd::new()?,
            pending: AtomicBool::new(false),
            id: NEXT_WAKEUP.fetch_add(1, Ordering::Relaxed),
            own: AtomicBool::new(false),
        })
    }

    /// Makes the owner's current or next [`sleep`] return.
    pub(crate) fn notify(&self) {
        if DRIVING.with(Cell::get) == self.id {
            // The owner notifies itself: it is awake (see `Owner`).
            self.own.store(true, Ordering::Relaxed);
            return;
        }
        // AcqRel pairs with `clear`: whatever the notifier did before (say, queueing a
        // message) is visible to the owner once it has cleared this notification.
        if !self.pending.swap(true, Ordering::AcqRel) {
            self.fd.signal();
        }
    }

    /// Consumes a notification; the owner looks for what it announced only afterwards.
    ///
    /// The descriptor is drained before the flag is lowered, never after: draining second
    /// could swallow the signal of a `notify` that came in between and raised the flag again,
    /// leaving the flag up with nothing to wake the next sleep, so that every later `notify`
    /// would see the flag and stay silent (a lost wake-up, caught by
    /// `no_notification_is_lost_to_a_racing_clear`). In this order a `notify` racing with
    /// `clear` either finds the flag still up, and then its news is seen when the owner looks
    /// after this call (the `AcqRel` swap reads its write), or finds it down and signals anew.
    fn clear(&self) {
        self.fd.drain();
        self.pending.swap(false, Ordering::AcqRel);
    }
}

impl std::fmt::Debug for Wakeup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wakeup")
            .field("pending", &self.pending.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// What [`sleep`] found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Readiness {
    /// The socket can be read (or the read would report its end or an error).
    pub readable: bool,
    /// The socket can be written (or the write would report an error).
    pub writable: bool,
    /// The socket has a pending error (`SO_ERROR`); reported whatever the interest.
    pub error: bool,
    /// Both directions of the socket are shut; reported whatever the interest.
    pub hangup: bool,
    /// The wake-up was notified (and the notification is now consumed).
    pub woken: bool,
}

/// A socket to sleep on, and what it should be ready for. Errors and hang-ups are reported
/// whatever the interest.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Watch<'a> {
    pub fd: BorrowedFd<'a>,
    pub read: bool,
    pub write: bool,
}

impl<'a> Watch<'a> {
    /// Watch `socket` for readability (`read`) and writability (`write`).
    pub(crate) fn new(socket: &'a impl AsFd, read: bool, write: bool) -> Self {
        Watch {
            fd: socket.as_fd(),
            read,
            write,
        }
    }
}

/// Sleeps until `socket` is ready for what it is watched for, `wakeup` is notified, or
/// `timeout` passes (`None`: no timeout). With no socket, only the wake-up and the timeout count.
///
/// Interrupted sleeps and timeouts return an empty [`Readiness`]: the caller re-examines its
/// state on every return anyway.
pub(crate) fn sleep(
    wakeup: &Wakeup,
    socket: Option<Watch<'_>>,
    timeout: Option<Duration>,
) -> io::Result<Readiness> {
    let mut ready = [Readiness::default()];
    let woken = sleep_many(wakeup, &[socket], &mut ready, timeout)?;
    Ok(Readiness { woken, ..ready[0] })
}

/// Watches handled without allocating; more (a thread with several companions) use the heap.
const INLINE_WATCHES: usize = 4;

/// [`sleep`] over several sockets at once (a connection and its companions): still one
/// `poll(2)`, over the wake-up descriptor and every watched socket.
///
/// `ready[i]` receives what `watches[i]` found (nothing for a `None` watch, which is left out
/// of the `poll`); `ready` must be as long as `watches`. Returns whether the wake-up was
/// notified (the notification is then consumed). Interrupted sleeps and timeouts report
/// nothing.
pub(crate) fn sleep_many(
    wakeup: &Wakeup,
    watches: &[Option<Watch<'_>>],
    ready: &mut [Readiness],
    timeout: Option<Duration>,
) -> io::Result<bool> {
    debug_assert_eq!(watches.len(), ready.len());
    ready.fill(Readiness::default());
    if wakeup.own.swap(false, Ordering::Relaxed) {
        // Notified by this very thread since its last sleep: look again before sleeping.
        return Ok(true);
    }
    let filler = PollFd::new(&wakeup.fd, PollFlags::empty());
    let mut inline: [PollFd<'_>; INLINE_WATCHES + 1] = std::array::from_fn(|_| filler.clone());
    let mut heap = Vec::new();
    let fds: &mut [PollFd<'_>] = if watches.len() <= INLINE_WATCHES {
        &mut inline
    } else {
        heap.resize(watches.len() + 1, filler);
        &mut heap
    };
    fds[0] = PollFd::new(&wakeup.fd, PollFlags::IN);
    let mut count = 1;
    for watch in watches.iter().flatten() {
        let mut flags = PollFlags::empty();
        flags.set(PollFlags::IN, watch.read);
        flags.set(PollFlags::OUT, watch.write);
        fds[count] = PollFd::from_borrowed_fd(watch.fd, flags);
        count += 1;
    }
    let timeout = timeout.map(|t| Timespec {
        tv_sec: i64::try_from(t.as_secs()).unwrap_or(i64::MAX),
        tv_nsec: t.subsec_nanos().into(),
    });
    match rustix::event::poll(&mut fds[..count], timeout.as_ref()) {
        Ok(_) => {}
        Err(rustix::io::Errno::INTR) => return Ok(false),
        Err(err) => return Err(err.into()),
    }
    let woken = !fds[0].revents().is_empty();
    if woken {
        wakeup.clear();
    }
    let polled = watches
        .iter()
        .zip(ready.iter_mut())
        .filter(|(watch, _)| watch.is_some());
    for ((_, slot), fd) in polled.zip(&fds[1..count]) {
        let revents = fd.revents();
        *slot = Readiness {
            readable: revents.intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR),
            writable: revents.intersects(PollFlags::OUT | PollFlags::ERR),
            error: revents.contains(PollFlags::ERR),
            hangup: revents.contains(PollFlags::HUP),
            woken,
        };
    }
    Ok(woken)
}

/// The descriptor a [`Wakeup`] signals: an eventfd where there is one.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
struct WakeFd(std::os::fd::OwnedFd);

#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
impl WakeFd {
    fn new() -> io::Result<Self> {
        use rustix::event::{eventfd, EventfdFlags};
        Ok(WakeFd(eventfd(
            0,
            EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK,
        )?))
    }

    fn signal(&self) {
        // Fails only if the counter would overflow, which a pending signal never lets happen.
        let _ = rustix::io::write(&self.0, &1u64.to_ne_bytes());
    }

    fn drain(&self) {
        // Reading an eventfd resets its counter in one call.
        let _ = rustix::io::read(&self.0, &mut [0u8; 8]);
    }
}

#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
impl AsFd for WakeFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// The descriptor a [`Wakeup`] signals: the reading end of a socket pair elsewhere.
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
struct WakeFd {
    reader: std::os::unix::net::UnixStream,
    writer: std::os::unix::net::UnixStream,
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
impl WakeFd {
    fn new() -> io::Result<Self> {
        let (reader, writer) = std::os::unix::net::UnixStream::pair()?;
        reader.set_nonblocking(true)?;
        writer.set_nonblocking(true)?;
        Ok(WakeFd { reader, writer })
    }

    fn signal(&self) {
        use std::io::Write;
        // A full pipe already guarantees a wake-up.
        let _ = (&self.writer).write(&[1]);
    }

    fn drain(&self) {
        use std::io::Read;
        let mut buf = [0u8; 64];
        while matches!((&self.reader).read(&mut buf), Ok(n) if n > 0) {}
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
impl AsFd for WakeFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.reader.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::sync::Arc;

    const NEVER: Option<Duration> = Some(Duration::from_secs(30));

    #[test]
    fn a_timeout_with_nothing_ready_reports_nothing() {
        let wakeup = Wakeup::new().unwrap();
        let ready = sleep(&wakeup, None, Some(Duration::from_millis(5))).unwrap();
        assert_eq!(ready, Readiness::default());
    }

    #[test]
    fn notifications_before_a_sleep_wake_it_once() {
        let wakeup = Wakeup::new().unwrap();
        wakeup.notify();
        wakeup.notify();
        assert!(sleep(&wakeup, None, NEVER).unwrap().woken);
        let again = sleep(&wakeup, None, Some(Duration::ZERO)).unwrap();
        assert!(
            !again.woken,
            "both notifications were consumed by one wake-up"
        );
    }

    #[test]
    fn a_notification_from_another_thread_wakes_a_sleep() {
        let wakeup = Arc::new(Wakeup::new().unwrap());
        let notifier = Arc::clone(&wakeup);
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            notifier.notify();
        });
        // Interrupted sleeps return early and empty, so sleep until woken, within reason.
        let woken = (0..100).any(|_| sleep(&wakeup, None, NEVER).unwrap().woken);
        assert!(woken);
        thread.join().unwrap();
    }

    #[test]
    fn no_notification_is_lost_to_a_racing_clear() {
        use std::sync::atomic::AtomicUsize;
        // Each notifier "posts" (bumps `posted`) and then notifies, as a mailbox does; the
        // owner "takes" everything posted after each wake-up, and must never sleep through a
        // post. A lost wake-up shows as a sleep that runs into its (long) timeout.
        const NOTIFIERS: usize = 3;
        const POSTS: usize = 20_000;
        let wakeup = Arc::new(Wakeup::new().unwrap());
        let posted = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..NOTIFIERS)
            .map(|_| {
                let (wakeup, posted) = (Arc::clone(&wakeup), Arc::clone(&posted));
                std::thread::spawn(move || {
                    for _ in 0..POSTS {
                        posted.fetch_add(1, Ordering::AcqRel);
                        wakeup.notify();
                    }
                })
            })
            .collect();
        let mut taken = 0;
        while taken < NOTIFIERS * POSTS {
            let now_posted = posted.load(Ordering::Acquire);
            if now_posted > taken {
                taken = now_posted;
                continue;
            }
            let ready = sleep(&wakeup, None, Some(Duration::from_secs(10))).unwrap();
            assert!(ready.woken, "slept through a post: {taken} taken");
        }
        for thread in threads {
            thread.join().unwrap();
        }
    }

    #[test]
    fn one_sleep_reports_each_socket_apart() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut first = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (first_server, _) = listener.accept().unwrap();
        let _second = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (second_server, _) = listener.accept().unwrap();
        first.write_all(b"x").unwrap();
        let wakeup = Wakeup::new().unwrap();
        let watches = [
            Some(Watch::new(&second_server, true, false)),
            None,
            Some(Watch::new(&first_server, true, false)),
        ];
        let mut ready = [Readiness::default(); 3];
        let woken = sleep_many(&wakeup, &watches, &mut ready, NEVER).unwrap();
        assert!(!woken);
        assert!(
            !ready[0].readable && !ready[1].readable && ready[2].readable,
            "{ready:?}"
        );
        // More watches than fit inline.
        let watches = [Some(Watch::new(&first_server, true, false)); 7];
        let mut ready = [Readiness::default(); 7];
        sleep_many(&wakeup, &watches, &mut ready, NEVER).unwrap();
        assert!(ready.iter().all(|found| found.readable), "{ready:?}");
    }

    #[test]
    fn the_owner_notifying_itself_needs_no_descriptor_and_is_not_lost() {
        let wakeup = Arc::new(Wakeup::new().unwrap());
        {
            let _owner = Owner::new(&wakeup);
            wakeup.notify();
            assert!(
                !wakeup.pending.load(Ordering::Relaxed),
                "the descriptor was not signalled"
            );
            assert!(sleep(&wakeup, None, NEVER).unwrap().woken);
            let again = sleep(&wakeup, None, Some(Duration::ZERO)).unwrap();
            assert!(!again.woken);
        }
        // Other threads, and this one once it no longer drives the loop, signal as before.
        wakeup.notify();
        assert!(wakeup.pending.load(Ordering::Relaxed));
        assert!(sleep(&wakeup, None, NEVER).unwrap().woken);
    }

    #[test]
    fn reports_readiness_and_a_reset_without_interest() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let wakeup = Wakeup::new().unwrap();
        let ready = sleep(&wakeup, Some(Watch::new(&server, true, true)), NEVER).unwrap();
        assert!(ready.writable && !ready.readable);
        client.write_all(b"x").unwrap();
        let ready = sleep(&wakeup, Some(Watch::new(&server, true, false)), NEVER).unwrap();
        assert!(ready.readable && !ready.error);
        // A reset is reported even to a socket that asked for nothing (a paused reader).
        socket2::SockRef::from(&client)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(client);
        let ready = sleep(&wakeup, Some(Watch::new(&server, false, false)), NEVER).unwrap();
        assert!(ready.error && ready.hangup, "{ready:?}");
    }
}
