//! Time functions KPI queries share.
//!
//! - `local_date(ts)`, `local_hour(ts)`: a UTC timestamp on the trust's wall clock.
//! - `local_day_start(date)`: the UTC instant the trust's day `date` begins.
//! - `minutes_between(from, to)`: elapsed minutes as a DOUBLE (negative when `to` is earlier).
//!
//! The lake stores UTC, but a trust's day, its midnight bed census and "discharged before
//! noon" follow the clock on the ward wall, which moves with summer time; the zone comes from
//! [`super::QueryConfig::time_zone`]. `minutes_between` exists because SQL dialects disagree on
//! how to subtract timestamps, and KPI queries should read the same in every tool.

use std::sync::Arc;

use arrow::array::{
    Array, AsArray, Date32Array, Float64Array, Int32Array, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Date32Type, TimeUnit, TimestampMicrosecondType};
use chrono::{DateTime, Timelike};
use chrono_tz::Tz;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Part {
    Date,
    Hour,
    DayStart,
    MinutesBetween,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct LocalTime {
    part: Part,
    zone: Tz,
    signature: Signature,
}

fn utc() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some(crate::schema::UTC.into()))
}

/// The functions, with `zone` as the trust's clock.
pub(super) fn functions(zone: Tz) -> [ScalarUDF; 4] {
    [Part::Date, Part::Hour, Part::DayStart, Part::MinutesBetween].map(|part| {
        let arguments = match part {
            Part::Date | Part::Hour => vec![utc()],
            Part::DayStart => vec![DataType::Date32],
            Part::MinutesBetween => vec![utc(), utc()],
        };
        ScalarUDF::new_from_impl(LocalTime {
            part,
            zone,
            signature: Signature::exact(arguments, Volatility::Immutable),
        })
    })
}

impl LocalTime {
    fn local(&self, micros: i64) -> Option<DateTime<Tz>> {
        DateTime::from_timestamp_micros(micros).map(|utc| utc.with_timezone(&self.zone))
    }

    /// The first instant of local day `days` (since 1970-01-01), in UTC microseconds.
    fn day_start(&self, days: i32) -> Option<i64> {
        let day = Date32Type::to_naive_date_opt(days)?;
        // Midnight, or the end of the gap in zones whose clocks jump forward at midnight.
        [0, 1].into_iter().find_map(|hour| {
            day.and_hms_opt(hour, 0, 0)?
                .and_local_timezone(self.zone)
                .earliest()
                .map(|t| t.timestamp_micros())
        })
    }
}

impl ScalarUDFImpl for LocalTime {
    fn name(&self) -> &str {
        match self.part {
            Part::Date => "local_date",
            Part::Hour => "local_hour",
            Part::DayStart => "local_day_start",
            Part::MinutesBetween => "minutes_between",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(match self.part {
            Part::Date => DataType::Date32,
            Part::Hour => DataType::Int32,
            Part::DayStart => utc(),
            Part::MinutesBetween => DataType::Float64,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let expected = if self.part == Part::MinutesBetween {
            2
        } else {
            1
        };
        if arrays.len() != expected {
            return Err(DataFusionError::Plan(format!(
                "{} takes {expected} argument(s)",
                self.name()
            )));
        }
        let times = || arrays[0].as_primitive::<TimestampMicrosecondType>();
        let result: Arc<dyn Array> = match self.part {
            Part::Date => Arc::new(
                times()
                    .iter()
                    .map(|t| Some(Date32Type::from_naive_date(self.local(t?)?.date_naive())))
                    .collect::<Date32Array>(),
            ),
            Part::Hour => Arc::new(
                times()
                    .iter()
                    .map(|t| Some(self.local(t?)?.hour() as i32))
                    .collect::<Int32Array>(),
            ),
            Part::DayStart => Arc::new(
                arrays[0]
                    .as_primitive::<Date32Type>()
                    .iter()
                    .map(|d| self.day_start(d?))
                    .collect::<TimestampMicrosecondArray>()
                    .with_timezone(crate::schema::UTC),
            ),
            Part::MinutesBetween => {
                let to = arrays[1].as_primitive::<TimestampMicrosecondType>();
                Arc::new(
                    times()
                        .iter()
                        .zip(to.iter())
                        .map(|(a, b)| Some((b? - a?) as f64 / 60e6))
                        .collect::<Float64Array>(),
                )
            }
        };
        Ok(ColumnarValue::Array(result))
    }
}
