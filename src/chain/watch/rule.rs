//! The re-arm rule (hysteresis with a cooldown), as a pure function of a subscriber's stored
//! state and this evaluation's two condition results.
//!
//! A subscriber starts armed. Armed and `condition` true: alert once and disarm. Disarmed: no
//! alert however long `condition` stays true; re-armed only when the `rearm` condition is
//! true (a separate level, e.g. health factor above 1.3 after alerting below 1.1; without
//! one, once `condition` is false). An alert also waits until `cooldown_blocks` have passed
//! since the subscriber's previous alert.

/// One subscriber's state for one watch. A subscriber without a stored row is [`Default`]:
/// armed, never alerted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriberState {
    pub armed: bool,
    /// Block of the last alert.
    pub fired_block: Option<u64>,
}

impl Default for SubscriberState {
    fn default() -> Self {
        Self {
            armed: true,
            fired_block: None,
        }
    }
}

/// What one evaluation does for a subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Alert the subscriber; the state is now disarmed with `fired_block` set.
    Alert,
    /// Armed again.
    Rearm,
    /// Nothing changes.
    Stay,
}

/// The next state and what to do, given this evaluation at `block`.
pub fn step(
    state: SubscriberState,
    condition: bool,
    rearm: bool,
    block: u64,
    cooldown_blocks: u64,
) -> (SubscriberState, Step) {
    if state.armed {
        let cooled = state
            .fired_block
            .is_none_or(|fired| block >= fired.saturating_add(cooldown_blocks));
        if condition && cooled {
            let next = SubscriberState {
                armed: false,
                fired_block: Some(block),
            };
            return (next, Step::Alert);
        }
        return (state, Step::Stay);
    }
    if rearm {
        return (
            SubscriberState {
                armed: true,
                ..state
            },
            Step::Rearm,
        );
    }
    (state, Step::Stay)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a sequence of (condition, rearm) evaluations one block apart from block 100.
    fn run(seq: &[(bool, bool)], cooldown: u64) -> Vec<Step> {
        let mut state = SubscriberState::default();
        seq.iter()
            .enumerate()
            .map(|(i, (c, r))| {
                let (next, s) = step(state, *c, *r, 100 + i as u64, cooldown);
                state = next;
                s
            })
            .collect()
    }

    #[test]
    fn alerts_once_while_the_condition_holds_and_again_after_rearm() {
        use Step::*;
        // below, below, between the levels (neither), above (rearm), below again.
        let steps = run(
            &[
                (true, false),
                (true, false),
                (false, false),
                (false, true),
                (true, false),
            ],
            0,
        );
        assert_eq!(steps, vec![Alert, Stay, Stay, Rearm, Alert]);
    }

    #[test]
    fn cooldown_delays_the_next_alert() {
        use Step::*;
        let steps = run(
            &[
                (true, false),
                (false, true),
                (true, false),
                (true, false),
                (true, false),
            ],
            4,
        );
        // Alert at 100; re-armed at 101; 102 and 103 are inside the cooldown; 104 alerts.
        assert_eq!(steps, vec![Alert, Rearm, Stay, Stay, Alert]);
    }

    #[test]
    fn a_true_condition_on_first_sight_alerts() {
        assert_eq!(run(&[(true, false)], 10), vec![Step::Alert]);
        assert_eq!(run(&[(false, true)], 10), vec![Step::Stay]);
    }
}
