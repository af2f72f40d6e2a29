// SPDX-License-Identifier: GPL-2.0

//! The controller's state machine: one place that decides what may happen
//! to a controller now.
//!
//! The states are those of the C driver's `enum nvme_ctrl_state`
//! (`drivers/nvme/host/nvme.h`), plus [`State::Suspended`] for a
//! controller shut down for system sleep, and the allowed moves are a
//! table ([`State::may_become`]) in the manner of its
//! `nvme_change_ctrl_state()`. Every path that changes what the controller
//! does (probe, timeout, reset, subsystem reset, suspend, resume, removal,
//! surprise removal) asks [`StateMachine::change`] first; a move the table
//! refuses is an error the caller returns, never a silent race.
//!
//! Pure and host tested: no kernel dependency.

#![deny(unsafe_code)]

use core::fmt;
use core::sync::atomic::{AtomicU8, Ordering};

/// Where a controller stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub(crate) enum State {
    /// Being probed: not serving I/O yet.
    New = 0,
    /// Serving I/O.
    Live = 1,
    /// A reset was decided on: the queues are quiesced, the controller is
    /// being disabled and its requests taken back.
    Resetting = 2,
    /// Being brought back up after a reset or a resume: requests wait.
    Connecting = 3,
    /// Shut down for system sleep or power-off: requests wait for the
    /// resume.
    Suspended = 4,
    /// Being unbound: no more resets; I/O still completes.
    Deleting = 5,
    /// Could not be brought back, or is gone: I/O fails at once.
    Dead = 6,
}

impl State {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::New,
            1 => Self::Live,
            2 => Self::Resetting,
            3 => Self::Connecting,
            4 => Self::Suspended,
            5 => Self::Deleting,
            _ => Self::Dead,
        }
    }

    /// The name the C driver's sysfs `state` attribute uses.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Live => "live",
            Self::Resetting => "resetting",
            Self::Connecting => "connecting",
            Self::Suspended => "suspended",
            Self::Deleting => "deleting",
            Self::Dead => "dead",
        }
    }

    /// Whether a controller in this state may move to `to`: the table
    /// every change is checked against.
    ///
    /// - `Live` comes after a bring-up (`New` at probe, `Connecting`
    ///   after a reset or a resume).
    /// - `Resetting` starts from `Live` only (a reset while one runs,
    ///   suspended or being removed is refused); `Connecting` follows it,
    ///   or a suspend (the resume brings the controller up again).
    /// - `Suspended` comes from `Live` only.
    /// - `Deleting` from any state but `Dead`: removal waits for nothing.
    /// - `Dead` from any state: a controller can fail or vanish at any
    ///   time. Nothing leaves `Dead`.
    pub(crate) fn may_become(self, to: State) -> bool {
        use State::*;
        match to {
            New => false,
            Live => matches!(self, New | Connecting),
            Resetting => matches!(self, Live),
            Connecting => matches!(self, Resetting | Suspended),
            Suspended => matches!(self, Live),
            Deleting => !matches!(self, Deleting | Dead),
            Dead => !matches!(self, Dead),
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A change [`State::may_become`] refused: the controller was in `from`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Refused {
    /// The state the controller was in.
    pub(crate) from: State,
    /// The state asked for.
    pub(crate) to: State,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} controller cannot become {}", self.from, self.to)
    }
}

/// A controller's state, changed only as [`State::may_become`] allows.
pub(crate) struct StateMachine {
    state: AtomicU8,
}

impl StateMachine {
    /// A controller being probed ([`State::New`]).
    pub(crate) const fn new() -> Self {
        Self {
            state: AtomicU8::new(State::New as u8),
        }
    }

    /// The current state.
    pub(crate) fn get(&self) -> State {
        State::from_u8(self.state.load(Ordering::Acquire))
    }

    /// Moves to `to` if the table allows it from the current state, and
    /// returns the state it left; else changes nothing.
    pub(crate) fn change(&self, to: State) -> Result<State, Refused> {
        let mut cur = self.state.load(Ordering::Acquire);
        loop {
            let from = State::from_u8(cur);
            if !from.may_become(to) {
                return Err(Refused { from, to });
            }
            match self
                .state
                .compare_exchange(cur, to as u8, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(from),
                Err(now) => cur = now,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use State::*;

    /// Every state, in the order of their values.
    const STATES: [State; 7] = [New, Live, Resetting, Connecting, Suspended, Deleting, Dead];

    #[test]
    fn starts_new() {
        assert_eq!(StateMachine::new().get(), New);
    }

    #[test]
    fn values_round_trip() {
        for s in STATES {
            assert_eq!(State::from_u8(s as u8), s);
        }
    }

    #[test]
    fn names_are_the_c_drivers() {
        let names: Vec<_> = STATES.iter().map(|s| s.name()).collect();
        assert_eq!(
            names,
            [
                "new",
                "live",
                "resetting",
                "connecting",
                "suspended",
                "deleting",
                "dead"
            ]
        );
    }

    #[test]
    fn table() {
        // (from, to) pairs the table allows; every other pair is refused.
        let allowed = [
            (New, Live),
            (Connecting, Live),
            (Live, Resetting),
            (Resetting, Connecting),
            (Suspended, Connecting),
            (Live, Suspended),
            (New, Deleting),
            (Live, Deleting),
            (Resetting, Deleting),
            (Connecting, Deleting),
            (Suspended, Deleting),
            (New, Dead),
            (Live, Dead),
            (Resetting, Dead),
            (Connecting, Dead),
            (Suspended, Dead),
            (Deleting, Dead),
        ];
        for from in STATES {
            for to in STATES {
                assert_eq!(
                    from.may_become(to),
                    allowed.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
    }

    #[test]
    fn reset_cycle() {
        let sm = StateMachine::new();
        assert_eq!(sm.change(Live), Ok(New));
        assert_eq!(sm.change(Resetting), Ok(Live));
        // A second reset while one runs is refused.
        assert_eq!(
            sm.change(Resetting),
            Err(Refused {
                from: Resetting,
                to: Resetting
            })
        );
        assert_eq!(sm.change(Connecting), Ok(Resetting));
        assert_eq!(sm.change(Live), Ok(Connecting));
    }

    #[test]
    fn suspend_cycle_refuses_reset() {
        let sm = StateMachine::new();
        sm.change(Live).unwrap();
        assert_eq!(sm.change(Suspended), Ok(Live));
        assert!(sm.change(Resetting).is_err());
        assert_eq!(sm.get(), Suspended);
        assert_eq!(sm.change(Connecting), Ok(Suspended));
        assert_eq!(sm.change(Live), Ok(Connecting));
    }

    #[test]
    fn dead_is_final() {
        let sm = StateMachine::new();
        sm.change(Live).unwrap();
        assert_eq!(sm.change(Dead), Ok(Live));
        for to in STATES {
            assert!(sm.change(to).is_err(), "dead -> {to}");
        }
        assert_eq!(sm.get(), Dead);
    }

    #[test]
    fn deleting_allows_only_dead() {
        let sm = StateMachine::new();
        sm.change(Live).unwrap();
        sm.change(Deleting).unwrap();
        for to in STATES {
            assert_eq!(sm.change(to).is_ok(), to == Dead, "deleting -> {to}");
            if to == Dead {
                break;
            }
        }
    }

    #[test]
    fn refusal_says_both_states() {
        let sm = StateMachine::new();
        let refused = sm.change(Connecting).unwrap_err();
        assert_eq!(
            refused,
            Refused {
                from: New,
                to: Connecting
            }
        );
        assert_eq!(
            refused.to_string(),
            "a new controller cannot become connecting"
        );
    }
}
