//! Defining commands: [`Command`], its [`Fields`] records and its [`DeclaredError`]s.

use alloc::string::{String, ToString};
use core::fmt;

use crate::amp::box_codec::AmpBox;
use crate::amp::types::ArgumentError;

/// A record of named arguments: a command's arguments, its response, or an `AmpList` row.
///
/// Write it with [`fields!`](crate::amp::fields): each field's name is its key on the wire and
/// its type says its AMP argument type (see [`Argument`](crate::amp::Argument)).
pub trait Fields: Sized {
    /// Writes every field into `amp_box`; refuses (before anything is sent) a value too long
    /// for the wire.
    fn to_box(&self, amp_box: &mut AmpBox) -> Result<(), ArgumentError>;

    /// Reads every field from `amp_box`; keys it does not know are ignored, as Twisted does.
    fn from_box(amp_box: &AmpBox) -> Result<Self, ArgumentError>;
}

/// No fields at all: the arguments or response of a command that carries none.
impl Fields for () {
    fn to_box(&self, _: &mut AmpBox) -> Result<(), ArgumentError> {
        Ok(())
    }
    fn from_box(_: &AmpBox) -> Result<Self, ArgumentError> {
        Ok(())
    }
}

/// An AMP command (Twisted's `amp.Command` subclass): its name on the wire, its typed
/// arguments and response, and the errors it declares.
///
/// ```
/// use loomwork::amp::{errors, fields, Command};
///
/// fields! {
///     /// `Divide`'s arguments.
///     pub struct DivideArgs { pub numerator: i64, pub denominator: i64 }
/// }
/// fields! {
///     /// `Divide`'s response.
///     pub struct Quotient { pub result: f64 }
/// }
/// errors! {
///     /// What `Divide` may answer instead.
///     pub enum DivideError { ZeroDivision = "ZERO_DIVISION" => "division by zero" }
/// }
/// /// Twisted's `Divide` example command.
/// pub struct Divide;
/// impl Command for Divide {
///     const NAME: &'static str = "Divide";
///     type Arguments = DivideArgs;
///     type Response = Quotient;
///     type Error = DivideError;
/// }
/// ```
pub trait Command: 'static {
    /// The command's name on the wire (Twisted's `commandName`, by default the class name).
    const NAME: &'static str;
    /// False for a command sent without `_ask`, whose peer sends no answer (Twisted's
    /// `requiresAnswer = False`).
    const REQUIRES_ANSWER: bool = true;
    /// The arguments.
    type Arguments: Fields;
    /// The response.
    type Response: Fields;
    /// The declared errors ([`NoError`] for none).
    type Error: DeclaredError;
}

/// A command's declared errors (Twisted's `errors` and `fatalErrors`): each is an error code
/// on the wire and a typed value here.
///
/// Write it with [`errors!`](crate::amp::errors).
pub trait DeclaredError: Sized + fmt::Debug {
    /// The error's code on the wire (`_error_code`).
    fn code(&self) -> &'static str;

    /// The description sent with it (`_error_description`; Twisted sends `str(exception)`).
    fn description(&self) -> String;

    /// The declared error `code` names, if any.
    fn from_code(code: &[u8], description: &str) -> Option<Self>;

    /// True for a fatal error (Twisted's `fatalErrors`): the connection closes after it is sent.
    fn is_fatal(&self) -> bool {
        false
    }
}

/// The declared errors of a command that declares none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NoError {}

impl DeclaredError for NoError {
    fn code(&self) -> &'static str {
        match *self {}
    }
    fn description(&self) -> String {
        match *self {}
    }
    fn from_code(_: &[u8], _: &str) -> Option<Self> {
        None
    }
}

impl fmt::Display for NoError {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {}
    }
}

impl core::error::Error for NoError {}

/// Writes the description of a declared error: its `Display`.
#[doc(hidden)]
pub fn describe(error: &impl fmt::Display) -> String {
    error.to_string()
}

/// Defines a [`Fields`] record: a struct whose field names are the keys on the wire.
///
/// A key that is not a Rust identifier (Twisted maps `b"user-name"` to the Python argument
/// `user_name`) follows the type: `pub user_name: String => "user-name"`.
///
/// ```
/// use loomwork::amp::{fields, AmpBox, Fields};
///
/// fields! {
///     /// `Sum`'s arguments.
///     #[derive(PartialEq)]
///     pub struct SumArgs { pub a: i64, pub b: i64 }
/// }
/// let mut amp_box = AmpBox::new();
/// SumArgs { a: 13, b: 81 }.to_box(&mut amp_box).unwrap();
/// assert_eq!(amp_box.get(b"b").unwrap(), "81");
/// assert!(SumArgs::from_box(&amp_box).unwrap() == SumArgs { a: 13, b: 81 });
///
/// fields! {
///     /// A login.
///     pub struct Login { pub user_name: String => "user-name", pub remember: bool }
/// }
/// let mut amp_box = AmpBox::new();
/// Login { user_name: "ada".into(), remember: true }.to_box(&mut amp_box).unwrap();
/// assert_eq!(amp_box.get(b"user-name").unwrap(), "ada");
/// ```
#[macro_export]
macro_rules! amp_fields {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $(
                $(#[$field_meta:meta])*
                $field_vis:vis $field:ident : $ty:ty $(=> $key:literal)?
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug)]
        $vis struct $name {
            $(
                $(#[$field_meta])*
                #[doc = concat!("Key on the wire: `", $crate::amp_fields!(@key $field $($key)?), "`.")]
                $field_vis $field: $ty,
            )*
        }

        impl $crate::amp::Fields for $name {
            fn to_box(
                &self,
                amp_box: &mut $crate::amp::AmpBox,
            ) -> ::core::result::Result<(), $crate::amp::ArgumentError> {
                let _ = &amp_box;
                $(
                    $crate::amp::Argument::to_box(
                        &self.$field,
                        $crate::amp_fields!(@key $field $($key)?),
                        amp_box,
                    )?;
                )*
                Ok(())
            }
            fn from_box(
                amp_box: &$crate::amp::AmpBox,
            ) -> ::core::result::Result<Self, $crate::amp::ArgumentError> {
                let _ = &amp_box;
                Ok($name {
                    $(
                        $field: <$ty as $crate::amp::Argument>::from_box(
                            $crate::amp_fields!(@key $field $($key)?),
                            amp_box,
                        )?,
                    )*
                })
            }
        }
    };
    (@key $field:ident $key:literal) => { $key };
    (@key $field:ident) => { stringify!($field) };
}

/// Defines a [`DeclaredError`] enum: each unit variant with its code on the wire and its
/// description (Twisted's `errors = {ZeroDivisionError: b"ZERO_DIVISION"}`). End a variant
/// with `[fatal]` for Twisted's `fatalErrors`.
///
/// ```
/// use loomwork::amp::{errors, DeclaredError};
///
/// errors! {
///     /// What `Divide` may answer instead.
///     pub enum DivideError {
///         ZeroDivision = "ZERO_DIVISION" => "division by zero",
///         Overflow = "OVERFLOW" => "numbers too large" [fatal],
///     }
/// }
/// assert_eq!(DivideError::ZeroDivision.code(), "ZERO_DIVISION");
/// assert!(DivideError::Overflow.is_fatal());
/// assert_eq!(DivideError::from_code(b"OVERFLOW", ""), Some(DivideError::Overflow));
/// ```
#[macro_export]
macro_rules! amp_errors {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident = $code:literal => $text:literal $([$fatal:ident])? ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$variant_meta])* #[doc = $text] $variant, )+
        }

        impl $crate::amp::DeclaredError for $name {
            fn code(&self) -> &'static str {
                match self { $( $name::$variant => $code, )+ }
            }
            fn description(&self) -> $crate::amp::__private::String {
                $crate::amp::__private::describe(self)
            }
            fn from_code(code: &[u8], _description: &str) -> ::core::option::Option<Self> {
                $( if code == $code.as_bytes() { return Some($name::$variant); } )+
                None
            }
            fn is_fatal(&self) -> bool {
                match self { $( $name::$variant => $crate::amp_errors!(@fatal $($fatal)?), )+ }
            }
        }

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(match self { $( $name::$variant => $text, )+ })
            }
        }

        impl ::core::error::Error for $name {}
    };
    (@fatal fatal) => { true };
    (@fatal) => { false };
}
