//! The resume decision every engine makes the same way (RESUME-REASON,
//! RESUME-ALL-OR-NOTHING): whether a resume position can be replayed from
//! what the engine still holds, or the first reason it cannot.

use courier_protocol::v2::RecoveryReason;

use super::Position;

/// SEQ-JS-SAFE: the largest seq; a channel reaching it starts a new epoch.
pub(crate) const MAX_SEQ: u64 = (1 << 53) - 1;

/// What a resume from `resume` gets, given the channel's `current`
/// position, its `history_size` and `first_kept`: the lowest seq of the
/// current epoch still in history (size and TTL applied), provided that
/// every message from it up to `current.seq` is held.
///
/// `Ok(None)`: nothing was missed (empty replay). `Ok(Some(from))`: replay
/// `from..=current.seq`. `Err(reason)`: the first applicable reason of
/// RESUME-REASON, in the spec's order.
pub(crate) fn resume_range(
    resume: &Position,
    current: &Position,
    history_size: usize,
    first_kept: Option<u64>,
) -> Result<Option<u64>, RecoveryReason> {
    use RecoveryReason as R;
    if resume.epoch != current.epoch {
        return Err(R::EpochChanged);
    }
    if resume.seq > current.seq {
        return Err(R::PositionAhead);
    }
    if resume.seq == current.seq {
        // A resume from the current position recovers even without history.
        return Ok(None);
    }
    if history_size == 0 {
        return Err(R::NoHistory);
    }
    match first_kept {
        Some(first) if first <= resume.seq + 1 => Ok(Some(resume.seq + 1)),
        _ => Err(R::HistoryExpired),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(epoch: &str, seq: u64) -> Position {
        Position {
            epoch: epoch.into(),
            seq,
        }
    }

    #[test]
    fn reasons_come_in_the_spec_order() {
        use RecoveryReason as R;
        let current = at("e", 10);
        // An other epoch wins over everything else, even with no history.
        assert_eq!(
            resume_range(&at("x", 99), &current, 0, None),
            Err(R::EpochChanged)
        );
        assert_eq!(
            resume_range(&at("e", 11), &current, 0, None),
            Err(R::PositionAhead)
        );
        assert_eq!(resume_range(&at("e", 10), &current, 0, None), Ok(None));
        assert_eq!(
            resume_range(&at("e", 9), &current, 0, Some(1)),
            Err(R::NoHistory)
        );
        assert_eq!(
            resume_range(&at("e", 4), &current, 5, Some(6)),
            Err(R::HistoryExpired)
        );
        assert_eq!(
            resume_range(&at("e", 4), &current, 5, None),
            Err(R::HistoryExpired)
        );
        assert_eq!(resume_range(&at("e", 5), &current, 5, Some(6)), Ok(Some(6)));
        assert_eq!(
            resume_range(&at("e", 0), &current, 300, Some(1)),
            Ok(Some(1))
        );
    }
}
