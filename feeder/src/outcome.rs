//! How a reply's status becomes an [`Outcome`].
//!
//! By default the contract's rule ([`Outcome::from_status`]): 2xx ok, 4xx
//! rejected, anything else indeterminate. A request template may name the
//! statuses that count as ok (`ok_status`); then those are ok, any other
//! 4xx is rejected (the service refused it: it must not exist), and
//! everything else — 5xx, a 2xx or 3xx not listed, no reply — is
//! indeterminate: the feeder cannot tell whether the write happened.

use handover_contract::Outcome;

/// Which statuses are ok: a bit per status 0..640, or the default rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OkStatus(Option<[u64; 10]>);

impl OkStatus {
    /// Exactly `statuses` (each 100..=599, as validation ensures; others are ignored).
    pub fn listed(statuses: &[u16]) -> Self {
        let mut bits = [0u64; 10];
        for s in statuses
            .iter()
            .map(|s| usize::from(*s))
            .filter(|s| *s < 640)
        {
            bits[s / 64] |= 1 << (s % 64);
        }
        OkStatus(Some(bits))
    }

    /// The outcome of a reply with `status` (`None`: no reply at all).
    pub fn outcome(&self, status: Option<u16>) -> Outcome {
        let Some(bits) = &self.0 else {
            return Outcome::from_status(status);
        };
        match status.map(usize::from) {
            Some(s) if s < 640 && bits[s / 64] & (1 << (s % 64)) != 0 => Outcome::Ok,
            Some(s) if (400..500).contains(&s) => Outcome::Rejected,
            _ => Outcome::Indeterminate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_the_contract_rule() {
        for s in [
            None,
            Some(100),
            Some(200),
            Some(201),
            Some(299),
            Some(302),
            Some(404),
            Some(409),
            Some(500),
            Some(503),
            Some(999),
        ] {
            assert_eq!(
                OkStatus::default().outcome(s),
                Outcome::from_status(s),
                "{s:?}"
            );
        }
    }

    #[test]
    fn listed_statuses_are_ok_other_4xx_rejected_the_rest_indeterminate() {
        let ok = OkStatus::listed(&[201, 204, 404]);
        assert_eq!(ok.outcome(Some(201)), Outcome::Ok);
        assert_eq!(ok.outcome(Some(204)), Outcome::Ok);
        // Listed wins over the 4xx rule: "already deleted" may be success.
        assert_eq!(ok.outcome(Some(404)), Outcome::Ok);
        assert_eq!(ok.outcome(Some(409)), Outcome::Rejected);
        assert_eq!(ok.outcome(Some(400)), Outcome::Rejected);
        assert_eq!(ok.outcome(Some(499)), Outcome::Rejected);
        // A 2xx that is not listed: the service said something unexpected.
        assert_eq!(ok.outcome(Some(200)), Outcome::Indeterminate);
        assert_eq!(ok.outcome(Some(302)), Outcome::Indeterminate);
        assert_eq!(ok.outcome(Some(500)), Outcome::Indeterminate);
        assert_eq!(ok.outcome(Some(503)), Outcome::Indeterminate);
        assert_eq!(ok.outcome(Some(999)), Outcome::Indeterminate);
        assert_eq!(ok.outcome(None), Outcome::Indeterminate);
    }

    #[test]
    fn a_listed_5xx_is_ok() {
        let ok = OkStatus::listed(&[200, 599]);
        assert_eq!(ok.outcome(Some(599)), Outcome::Ok);
        assert_eq!(ok.outcome(Some(100)), Outcome::Indeterminate);
        assert_ne!(ok, OkStatus::default());
    }
}
