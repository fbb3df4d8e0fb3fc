//! The dashboard: counts and sign-ins / failed sign-ins per UTC day over the last 30 days,
//! laid out here as chart geometry so the page can draw an SVG without any script.

use serde::Serialize;

use super::AdminResult;
use crate::oauth::Provider;
use crate::store::Counts;

pub const DAYS: i64 = 30;
const DAY: i64 = 86_400;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Day {
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
    pub success: i64,
    pub failure: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Dashboard {
    pub counts: Counts,
    /// Oldest first, one entry per day, days without sign-ins included as zero.
    pub days: Vec<Day>,
}

pub async fn load(provider: &Provider, now: i64) -> AdminResult<Dashboard> {
    let today = now.div_euclid(DAY);
    let first = today - (DAYS - 1);
    let rows = provider.store.login_days(first * DAY).await?;
    let days = (first..=today)
        .map(|d| {
            let row = rows.iter().find(|r| r.day == d);
            Day {
                date: date_of(d),
                success: row.map_or(0, |r| r.success),
                failure: row.map_or(0, |r| r.failure),
            }
        })
        .collect();
    Ok(Dashboard {
        counts: provider.store.counts(now).await?,
        days,
    })
}

fn date_of(day: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(day * DAY)
        .map(|t| format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()))
        .unwrap_or_default()
}

/// Bar geometry for the SVG chart (viewBox 0 0 WIDTH HEIGHT): two bars per day.
#[derive(Debug, Clone, Serialize)]
pub struct Bar {
    pub x: i64,
    pub y: i64,
    pub height: i64,
    pub value: i64,
    pub date: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Chart {
    pub width: i64,
    pub height: i64,
    pub max: i64,
    pub success: Vec<Bar>,
    pub failure: Vec<Bar>,
    pub bar_width: i64,
}

pub fn chart(days: &[Day]) -> Chart {
    const WIDTH: i64 = 600;
    const HEIGHT: i64 = 200;
    const SLOT: i64 = 20;
    let max = days
        .iter()
        .map(|d| d.success.max(d.failure))
        .max()
        .unwrap_or(0)
        .max(1);
    let bar = |i: usize, v: i64, offset: i64, date: &str| {
        let h = v * (HEIGHT - 10) / max;
        Bar {
            x: i as i64 * SLOT + offset,
            y: HEIGHT - h,
            height: h,
            value: v,
            date: date.to_owned(),
        }
    };
    Chart {
        width: WIDTH,
        height: HEIGHT,
        max,
        bar_width: 8,
        success: days
            .iter()
            .enumerate()
            .map(|(i, d)| bar(i, d.success, 1, &d.date))
            .collect(),
        failure: days
            .iter()
            .enumerate()
            .map(|(i, d)| bar(i, d.failure, 10, &d.date))
            .collect(),
    }
}
