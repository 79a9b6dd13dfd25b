//! How a receiver endpoint misbehaves, for fault scenarios.

use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Behaviour {
    Healthy,
    /// Answers 500 to this fraction of requests.
    Fail(f64),
    /// Answers 500 to this fraction of requests at random, yet every delivery is
    /// expected to arrive: the run allows retries enough to get each one through.
    Flaky(f64),
    /// Does not answer this fraction of requests within any sane timeout.
    Timeout(f64),
    /// Answers after this many milliseconds.
    Slow(u64),
    /// Accepts this many requests per second; 429 with `Retry-After` beyond.
    Throttle(u32),
    /// 410 Gone.
    Gone,
    /// Accepts connections, never reads or answers.
    Blackhole,
}

impl Behaviour {
    /// Whether every delivery to such an endpoint is expected to arrive.
    pub fn expects_all(self) -> bool {
        matches!(
            self,
            Behaviour::Healthy | Behaviour::Slow(_) | Behaviour::Flaky(_)
        )
    }
}

/// `RANGE:KIND[=ARG]`, e.g. `0:blackhole`, `2-3:fail=0.3`.
#[derive(Debug, Clone, PartialEq)]
pub struct BehaviourSpec {
    pub first: usize,
    pub last: usize,
    pub behaviour: Behaviour,
}

impl FromStr for BehaviourSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (range, kind) = s.split_once(':').ok_or("expected RANGE:KIND[=ARG]")?;
        let (first, last) = match range.split_once('-') {
            Some((a, b)) => (
                a.parse().map_err(|_| "bad range start")?,
                b.parse().map_err(|_| "bad range end")?,
            ),
            None => {
                let i = range.parse().map_err(|_| "bad endpoint index")?;
                (i, i)
            }
        };
        if first > last {
            return Err("range start is after its end".into());
        }
        let (name, arg) = kind
            .split_once('=')
            .map_or((kind, None), |(n, a)| (n, Some(a)));
        let fraction = |a: Option<&str>| -> Result<f64, String> {
            let f: f64 = a
                .ok_or("needs =FRACTION")?
                .parse()
                .map_err(|_| "bad fraction")?;
            if (0.0..=1.0).contains(&f) {
                Ok(f)
            } else {
                Err("fraction must be 0 to 1".into())
            }
        };
        let number = |a: Option<&str>| -> Result<u64, String> {
            a.ok_or("needs =NUMBER")?
                .parse()
                .map_err(|_| "bad number".into())
        };
        let behaviour = match name {
            "fail" => Behaviour::Fail(fraction(arg)?),
            "flaky" => Behaviour::Flaky(fraction(arg)?),
            "timeout" => Behaviour::Timeout(fraction(arg)?),
            "slow" => Behaviour::Slow(number(arg)?),
            "throttle" => {
                Behaviour::Throttle(u32::try_from(number(arg)?).map_err(|_| "too large")?)
            }
            "gone" => Behaviour::Gone,
            "blackhole" => Behaviour::Blackhole,
            other => return Err(format!("unknown behaviour {other:?}")),
        };
        Ok(Self { first, last, behaviour })
    }
}

/// The behaviour of endpoint `index` (the last matching spec wins).
pub fn behaviour_of(specs: &[BehaviourSpec], index: usize) -> Behaviour {
    specs
        .iter()
        .rev()
        .find(|s| (s.first..=s.last).contains(&index))
        .map_or(Behaviour::Healthy, |s| s.behaviour)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        assert_eq!(
            "0:blackhole".parse::<BehaviourSpec>(),
            Ok(BehaviourSpec { first: 0, last: 0, behaviour: Behaviour::Blackhole })
        );
        assert_eq!(
            "2-3:fail=0.25".parse::<BehaviourSpec>(),
            Ok(BehaviourSpec {
                first: 2,
                last: 3,
                behaviour: Behaviour::Fail(0.25)
            })
        );
        assert_eq!(
            "1:throttle=5".parse::<BehaviourSpec>().map(|s| s.behaviour),
            Ok(Behaviour::Throttle(5))
        );
        assert_eq!(
            "0:flaky=0.3".parse::<BehaviourSpec>().map(|s| s.behaviour),
            Ok(Behaviour::Flaky(0.3))
        );
        assert!(Behaviour::Flaky(0.3).expects_all() && !Behaviour::Fail(0.3).expects_all());
        assert!("1:fail=2".parse::<BehaviourSpec>().is_err());
        assert!("x:gone".parse::<BehaviourSpec>().is_err());
        assert!("3-1:gone".parse::<BehaviourSpec>().is_err());
        assert!("1:explode".parse::<BehaviourSpec>().is_err());
    }

    #[test]
    fn last_matching_spec_wins() {
        let specs = vec![
            "0-9:slow=5".parse().expect("spec"),
            "3:gone".parse().expect("spec"),
        ];
        assert_eq!(behaviour_of(&specs, 3), Behaviour::Gone);
        assert_eq!(behaviour_of(&specs, 4), Behaviour::Slow(5));
        assert_eq!(behaviour_of(&specs, 10), Behaviour::Healthy);
    }
}
