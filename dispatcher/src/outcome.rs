//! What became of work handed to the database: done, stopped because shutdown came
//! while the database was away, or refused for good with why. One type for a
//! retried store call, a claim, a write of attempt records and a message's
//! conclusion, so each step's answer passes to the next unchanged.

/// Done, stopped, or refused (`E` says why; retrying cannot help).
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Outcome<T = (), E = String> {
    Done(T),
    /// Shutdown (or the stop of the message's shard) came first.
    Stopped,
    /// The input is at fault: the database refused it.
    Refused(E),
}

impl<T, E> Outcome<T, E> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Outcome<U, E> {
        match self {
            Self::Done(v) => Outcome::Done(f(v)),
            Self::Stopped => Outcome::Stopped,
            Self::Refused(e) => Outcome::Refused(e),
        }
    }

    /// The same outcome with the refusal told in words.
    pub fn explain(self, why: impl FnOnce(E) -> String) -> Outcome<T> {
        match self {
            Self::Done(v) => Outcome::Done(v),
            Self::Stopped => Outcome::Stopped,
            Self::Refused(e) => Outcome::Refused(why(e)),
        }
    }
}
