//! The time the pages and live boards show. In service it is the wall clock; `bright demo
//! --speed N` runs it N times faster from the start of the replay, so the boards move with the
//! replayed day (its milestones arrive ahead of the wall clock, and a board that read the wall
//! clock would hide them as "not yet happened").

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clock {
    origin: DateTime<Utc>,
    speed: f64,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::real()
    }
}

impl Clock {
    /// The wall clock.
    pub fn real() -> Clock {
        Clock {
            origin: DateTime::UNIX_EPOCH,
            speed: 1.0,
        }
    }

    /// A clock that reads `origin` at `origin` on the wall clock and runs `speed` times faster
    /// from there (at least as fast as the wall clock; anything else is the wall clock).
    pub fn fast(origin: DateTime<Utc>, speed: f64) -> Clock {
        if speed.is_finite() && speed > 1.0 {
            Clock { origin, speed }
        } else {
            Clock::real()
        }
    }

    pub fn speed(&self) -> f64 {
        self.speed
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.at(Utc::now())
    }

    /// What this clock reads when the wall clock reads `wall`.
    pub fn at(&self, wall: DateTime<Utc>) -> DateTime<Utc> {
        if self.speed == 1.0 {
            return wall;
        }
        let elapsed = (wall - self.origin).num_microseconds().unwrap_or(0) as f64;
        self.origin + chrono::Duration::microseconds((elapsed * self.speed) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fast_clock_runs_ahead_from_its_origin() {
        let origin = DateTime::parse_from_rfc3339("2026-12-03T10:00:00Z")
            .unwrap()
            .to_utc();
        let clock = Clock::fast(origin, 60.0);
        let wall = origin + chrono::Duration::seconds(90);
        assert_eq!(clock.at(wall), origin + chrono::Duration::minutes(90));
        assert_eq!(clock.at(origin), origin);
        assert_eq!(Clock::real().at(wall), wall);
        // Slower than the wall clock (or nonsense) is the wall clock.
        assert_eq!(Clock::fast(origin, 0.5), Clock::real());
        assert_eq!(Clock::fast(origin, f64::NAN), Clock::real());
    }
}
