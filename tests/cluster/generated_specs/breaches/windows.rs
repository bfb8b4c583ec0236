//! Breaches of the rules on release windows, release groups and the order within a group.

use serde_json::{Value, json};

use super::{Breach, analysed, breach, items, long};

/// A valid window: weekday mornings in Berlin.
fn window() -> Value {
    json!({"days": ["Mon", "Tue", "Wed"], "start": "09:00", "end": "12:30", "timeZone": "Europe/Berlin"})
}

/// The rollout of a canary with one valid window, and that window.
fn window_at(object: &mut Value) -> &mut Value {
    let rollout = analysed(object);
    rollout["windows"] = json!([window()]);
    &mut rollout["windows"][0]
}

pub fn breaches() -> Vec<Breach> {
    vec![
        breach(
            ".spec.rollout.windows maxItems",
            "spec.rollout.windows",
            |o, r, v| {
                let n = r.number() as usize + 1 + v;
                analysed(o)["windows"] = items(
                    n,
                    |i| json!({"start": format!("{:02}:00", i % 24), "end": format!("{:02}:30", i % 24)}),
                );
            },
        ),
        breach(
            ".spec.rollout.windows[] required:start",
            "spec.rollout.windows[0].start",
            |o, _, _| {
                window_at(o).as_object_mut().unwrap().remove("start");
            },
        ),
        breach(
            ".spec.rollout.windows[] required:end",
            "spec.rollout.windows[0].end",
            |o, _, _| {
                window_at(o).as_object_mut().unwrap().remove("end");
            },
        ),
        breach(
            ".spec.rollout.windows[].start pattern",
            "spec.rollout.windows[0].start",
            |o, _, v| {
                window_at(o)["start"] = ["24:00", "9:00", "09:60"][v % 3].into();
            },
        ),
        breach(
            ".spec.rollout.windows[].end pattern",
            "spec.rollout.windows[0].end",
            |o, _, v| {
                window_at(o)["end"] = ["noon", "12:5", "12.30"][v % 3].into();
            },
        ),
        breach("a window lists each day once", "", |o, _, v| {
            window_at(o)["days"] = match v % 3 {
                0 => json!(["Mon", "Mon"]),
                1 => json!(["Sat", "Sun", "Sat"]),
                _ => json!(["Mon", "Tue", "Wed", "Thu", "Fri", "Fri"]),
            };
        }),
        Breach {
            // Eight days out of seven repeat one.
            also: &["a window lists each day once"],
            ..breach(
                ".spec.rollout.windows[].days maxItems",
                "spec.rollout.windows[0].days",
                |o, r, v| {
                    let week = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
                    let n = r.number() as usize + 1 + v;
                    window_at(o)["days"] = items(n, |i| week[i % 7].into());
                },
            )
        },
        breach(
            ".spec.rollout.windows[].days[] enum",
            "spec.rollout.windows[0].days[0]",
            |o, _, v| {
                let day = ["mon", "Monday", "Mo"][v % 3];
                window_at(o)["days"] = json!([day]);
            },
        ),
        breach(
            ".spec.rollout.windows[].timeZone minLength",
            "spec.rollout.windows[0].timeZone",
            |o, _, _| {
                window_at(o)["timeZone"] = "".into();
            },
        ),
        breach(
            ".spec.rollout.windows[].timeZone maxLength",
            "spec.rollout.windows[0].timeZone",
            |o, r, v| {
                window_at(o)["timeZone"] = long("Europe/", r.number() as usize + 1 + v).into();
            },
        ),
        breach(
            ".spec.rollout.windows[].timeZone pattern",
            "spec.rollout.windows[0].timeZone",
            |o, _, v| {
                window_at(o)["timeZone"] = ["Europe Berlin", "UTC+01:00", "Zürich"][v % 3].into();
            },
        ),
    ]
}

pub fn group_breaches() -> Vec<Breach> {
    vec![
        breach(
            "rollout.after names members of a release group: set rollout.group",
            "",
            |o, _, v| {
                let rollout = analysed(o);
                rollout["after"] = items(v + 1, |i| format!("backend-{i}").into());
            },
        ),
        breach(
            ".spec.rollout.group minLength",
            "spec.rollout.group",
            |o, _, _| {
                analysed(o)["group"] = "".into();
            },
        ),
        breach(
            ".spec.rollout.group maxLength",
            "spec.rollout.group",
            |o, r, v| {
                analysed(o)["group"] = long("shop", r.number() as usize + 1 + v).into();
            },
        ),
        breach(
            ".spec.rollout.group pattern",
            "spec.rollout.group",
            |o, _, v| {
                analysed(o)["group"] = ["Shop", "-shop", "shop_front"][v % 3].into();
            },
        ),
        breach(
            ".spec.rollout.after maxItems",
            "spec.rollout.after",
            |o, r, v| {
                let n = r.number() as usize + 1 + v;
                let rollout = analysed(o);
                rollout["group"] = "shop".into();
                rollout["after"] = items(n, |i| format!("backend-{i}").into());
            },
        ),
    ]
}
