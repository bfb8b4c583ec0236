//! Pure text for the terminal: tables, ages, and the structured `-o json|yaml` forms.

mod list;
mod status;

pub use list::list_text;
pub use status::status_text;

use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

use super::args::OutputFormat;

/// `value` as JSON (pretty, with a final newline) or YAML.
pub fn structured<T: Serialize>(value: &T, format: OutputFormat) -> Result<String, String> {
    match format {
        OutputFormat::Json => serde_json::to_string_pretty(value)
            .map(|text| text + "\n")
            .map_err(|e| e.to_string()),
        OutputFormat::Yaml => serde_yaml::to_string(value).map_err(|e| e.to_string()),
    }
}

/// Columns left-aligned and three spaces apart, as kubectl prints them; every line starts
/// with `indent`. The last column is not padded.
pub fn table(indent: &str, rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    for row in rows {
        let mut line = indent.to_string();
        for (c, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if c + 1 < row.len() {
                let pad = widths[c] - cell.chars().count() + 3;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// How long ago `then` was, as kubectl's AGE column says it; `<unknown>` without a time.
pub fn age(then: Option<Timestamp>, now: Timestamp) -> String {
    match then {
        Some(then) => human_duration(now.as_second() - then.as_second()),
        None => "<unknown>".into(),
    }
}

/// kubectl's short form of a duration: `45s`, `3m20s`, `2h`, `3d4h`, `1y30d`.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    let seconds = seconds.max(0);
    let (minutes, hours) = (seconds / 60, seconds / 3600);
    let (days, years) = (hours / 24, hours / (24 * 365));
    let pair = |big: i64, big_unit: &str, small: i64, small_unit: &str| {
        if small == 0 {
            format!("{big}{big_unit}")
        } else {
            format!("{big}{big_unit}{small}{small_unit}")
        }
    };
    match () {
        _ if seconds < 120 => format!("{seconds}s"),
        _ if minutes < 10 => pair(minutes, "m", seconds % 60, "s"),
        _ if minutes < 180 => format!("{minutes}m"),
        _ if hours < 8 => pair(hours, "h", minutes % 60, "m"),
        _ if hours < 48 => format!("{hours}h"),
        _ if hours < 24 * 8 => pair(days, "d", hours % 24, "h"),
        _ if hours < 24 * 365 * 2 => format!("{days}d"),
        _ if hours < 24 * 365 * 8 => pair(years, "y", days % 365, "d"),
        _ => format!("{years}y"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_kubectl() {
        let cases = [
            (-5, "<invalid>"),
            (-1, "0s"),
            (45, "45s"),
            (119, "119s"),
            (200, "3m20s"),
            (300, "5m"),
            (45 * 60, "45m"),
            (3 * 3600 + 20 * 60, "3h20m"),
            (27 * 3600, "27h"),
            (3 * 86400 + 4 * 3600, "3d4h"),
            (120 * 86400, "120d"),
            (395 * 86400, "395d"),
            (760 * 86400, "2y30d"),
            (9 * 365 * 86400, "9y"),
        ];
        for (seconds, text) in cases {
            assert_eq!(human_duration(seconds), text, "{seconds}s");
        }
    }

    #[test]
    fn columns_line_up_three_spaces_apart() {
        let rows = [
            vec!["NAME".to_string(), "PHASE".into(), "AGE".into()],
            vec!["checkout".to_string(), "Paused".into(), "5m".into()],
        ];
        assert_eq!(
            table("  ", &rows),
            "  NAME       PHASE    AGE\n  checkout   Paused   5m\n"
        );
    }

    #[test]
    fn structured_output_is_json_or_yaml() {
        let value = serde_json::json!({"name": "checkout"});
        let json = structured(&value, OutputFormat::Json).unwrap();
        assert_eq!(json, "{\n  \"name\": \"checkout\"\n}\n");
        let yaml = structured(&value, OutputFormat::Yaml).unwrap();
        assert_eq!(yaml, "name: checkout\n");
    }
}
