//! What every part's report shares: medians, rounding, the number format of the tables, the
//! tables themselves, and the JSON files.

use std::path::Path;

use serde_json::Value;

/// The median (the mean of the middle two for an even count); None without values.
pub fn median(values: impl IntoIterator<Item = Option<f64>>) -> Option<f64> {
    let mut values: Vec<f64> = values.into_iter().flatten().collect();
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    })
}

/// `value` rounded to `digits` decimals, for the JSON.
pub fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

/// [`round`] of an optional value.
pub fn rnd(value: Option<f64>, digits: i32) -> Option<f64> {
    value.map(|v| round(v, digits))
}

/// A figure for a table: `-` when there is none.
pub fn fmt(value: Option<f64>, digits: usize, unit: &str) -> String {
    value.map_or_else(|| "-".to_string(), |v| format!("{v:.digits$}{unit}"))
}

/// "met", "NOT MET", or "-" when there is nothing to judge.
pub fn verdict(ok: Option<bool>) -> &'static str {
    match ok {
        None => "-",
        Some(true) => "met",
        Some(false) => "NOT MET",
    }
}

/// A number of a JSON object, when it is one.
pub fn num(value: &Value, key: &str) -> Option<f64> {
    value.get(key).and_then(Value::as_f64)
}

/// One row of a table: metric, median, notes.
pub type Row = (String, String, String);

pub fn row(name: impl Into<String>, value: impl Into<String>, notes: impl Into<String>) -> Row {
    (name.into(), value.into(), notes.into())
}

/// Prints a table of figures: a title (when given), then metric, median, per run / notes.
pub fn table(title: Option<&str>, rows: &[Row]) {
    let width = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
    let value_width = rows.iter().map(|r| r.1.chars().count()).max().unwrap_or(0);
    match title {
        Some(title) => println!("\n{title}"),
        None => println!(),
    }
    println!(
        "{:<width$}  {:<value_width$}  per run / notes",
        "metric", "median"
    );
    println!(
        "{}  {}  {}",
        "-".repeat(width),
        "-".repeat(value_width),
        "-".repeat(20)
    );
    for (name, value, notes) in rows {
        println!(
            "{}",
            format!("{name:<width$}  {value:<value_width$}  {notes}").trim_end()
        );
    }
}

/// Writes a part's JSON, indented as the tools that read it expect.
pub fn write_json(path: &Path, value: &Value) {
    let text = serde_json::to_string_pretty(value).expect("JSON of plain values");
    std::fs::write(path, text + "\n").unwrap_or_else(|e| die!("write {}: {e}", path.display()));
}

/// Appends one JSON object as a line (the raw records).
pub fn append_line(file: &mut std::fs::File, value: &Value) {
    use std::io::Write;
    let _ = writeln!(file, "{value}");
}

/// Creates a raw-records file.
pub fn create(path: &Path) -> std::fs::File {
    std::fs::File::create(path).unwrap_or_else(|e| die!("create {}: {e}", path.display()))
}
