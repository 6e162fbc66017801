//! Does a decoded record pass the models' validation (`schemas.models.from_avro`)? The rules come from
//! `schemas/models/rules.py` (field bounds, patterns, non-blank strings, finite floats, list lengths, uuids, times
//! Python can hold, the model validators by name). Only the answer is given: the reference writes the error of a
//! record that fails.

use regex::Regex;
use serde_json::Value as Json;

use crate::avro::{Node, Schema, Value};
use crate::program::{field, number, text, unwrap};

/// Milliseconds of datetime.min and datetime.max (UTC), days of date.min and date.max.
const MIN_MS: i64 = -62_135_596_800_000;
const MAX_MS: i64 = 253_402_300_799_999;
const MIN_DAY: i64 = -719_162;
const MAX_DAY: i64 = 2_932_896;

struct StrRule {
    min: Option<usize>,
    max: Option<usize>,
    pattern: Option<Regex>,
    nonblank: bool,
}

struct NumRule {
    ge: Option<f64>,
    gt: Option<f64>,
    le: Option<f64>,
    lt: Option<f64>,
    finite: bool,
}

#[derive(Default)]
struct Rule {
    string: Option<StrRule>,
    num: Option<NumRule>,
    list: Option<(Option<usize>, Option<usize>)>,
    items: Option<Box<Rule>>,
    record: Option<RecRule>,
    uuid: bool,
    ts: bool,
    date: bool,
}

enum Check {
    Lt(Vec<usize>, Vec<usize>),
    Le(Vec<usize>, Vec<usize>),
    NotFutureDate(Vec<usize>),
    AlertLifecycle { status: Vec<usize>, revision: Vec<usize>, cleared: Vec<usize>, nation: Vec<usize>, partner: Vec<usize> },
}

struct RecRule {
    fields: Vec<(usize, Rule)>,
    checks: Vec<Check>,
}

pub struct Validator {
    root: RecRule,
    whitespace: Vec<char>,
}

fn opt_usize(j: &Json, k: &str) -> Option<usize> {
    j.get(k).and_then(Json::as_u64).map(|v| v as usize)
}

fn opt_f64(j: &Json, k: &str) -> Option<f64> {
    j.get(k).and_then(Json::as_f64)
}

fn path(j: &Json) -> Result<Vec<usize>, String> {
    j.as_array()
        .ok_or("rules: a path is not a list")?
        .iter()
        .map(|x| x.as_u64().map(|v| v as usize).ok_or_else(|| "rules: a path index".to_string()))
        .collect()
}

fn rule(j: &Json) -> Result<Rule, String> {
    let mut r = Rule::default();
    if let Some(s) = j.get("str") {
        let pattern = match s.get("pattern").and_then(Json::as_str) {
            Some(p) => Some(Regex::new(p).map_err(|e| format!("rules: pattern {p}: {e}"))?),
            None => None,
        };
        r.string = Some(StrRule {
            min: opt_usize(s, "min_len"),
            max: opt_usize(s, "max_len"),
            pattern,
            nonblank: s.get("nonblank").and_then(Json::as_bool).unwrap_or(false),
        });
    }
    if let Some(n) = j.get("num") {
        r.num = Some(NumRule {
            ge: opt_f64(n, "ge"),
            gt: opt_f64(n, "gt"),
            le: opt_f64(n, "le"),
            lt: opt_f64(n, "lt"),
            finite: n.get("finite").and_then(Json::as_bool).unwrap_or(false),
        });
    }
    if let Some(l) = j.get("list") {
        r.list = Some((opt_usize(l, "min_len"), opt_usize(l, "max_len")));
    }
    if let Some(i) = j.get("items") {
        r.items = Some(Box::new(rule(i)?));
    }
    if let Some(rec) = j.get("record") {
        r.record = Some(record(rec)?);
    }
    r.uuid = j.get("uuid").and_then(Json::as_bool).unwrap_or(false);
    r.ts = j.get("ts").and_then(Json::as_bool).unwrap_or(false);
    r.date = j.get("date").and_then(Json::as_bool).unwrap_or(false);
    Ok(r)
}

fn record(j: &Json) -> Result<RecRule, String> {
    let mut fields = Vec::new();
    for f in j.get("fields").and_then(Json::as_array).ok_or("rules: record without fields")? {
        let idx = f[0].as_u64().ok_or("rules: field index")? as usize;
        fields.push((idx, rule(&f[1])?));
    }
    let mut checks = Vec::new();
    for c in j.get("checks").and_then(Json::as_array).ok_or("rules: record without checks")? {
        let xs = c.as_array().ok_or("rules: a check is not a list")?;
        let op = xs.first().and_then(Json::as_str).ok_or("rules: check without op")?;
        let p = |i: usize| xs.get(i).ok_or_else(|| format!("rules: {op} without argument {i}")).and_then(path);
        checks.push(match op {
            "lt" => Check::Lt(p(1)?, p(2)?),
            "le" => Check::Le(p(1)?, p(2)?),
            "not_future_date" => Check::NotFutureDate(p(1)?),
            "alert_lifecycle" => Check::AlertLifecycle { status: p(1)?, revision: p(2)?, cleared: p(3)?, nation: p(4)?, partner: p(5)? },
            other => return Err(format!("rules: unknown check {other}")),
        });
    }
    Ok(RecRule { fields, checks })
}

impl Validator {
    pub fn new(rules_json: &str) -> Result<Validator, String> {
        let j: Json = serde_json::from_str(rules_json).map_err(|e| format!("rules are not JSON: {e}"))?;
        Ok(Validator {
            root: record(j.get("record").ok_or("rules: no record")?)?,
            whitespace: j.get("whitespace").and_then(Json::as_str).unwrap_or("").chars().collect(),
        })
    }

    pub fn valid(&self, s: &Schema, v: &Value, today: i64) -> bool {
        self.rec(s, s.root, v, &self.root, today)
    }

    fn rec(&self, s: &Schema, at: usize, v: &Value, r: &RecRule, today: i64) -> bool {
        let (at, v) = unwrap(s, at, v);
        let (Node::Record { fields, .. }, Value::Record(vs)) = (&s.nodes[at], v) else { return false };
        for (idx, rule) in &r.fields {
            let (Some((_, fat)), Some(fv)) = (fields.get(*idx), vs.get(*idx)) else { return false };
            if !self.value(s, *fat, fv, rule, today) {
                return false;
            }
        }
        r.checks.iter().all(|c| check(s, at, v, c, today))
    }

    fn value(&self, s: &Schema, at: usize, v: &Value, r: &Rule, today: i64) -> bool {
        let (at, v) = unwrap(s, at, v);
        if matches!(v, Value::Null) {
            return true; // an optional value left out: nothing to check
        }
        if let Some((min, max)) = r.list {
            let (Node::Array(items), Value::Array(xs)) = (&s.nodes[at], v) else { return false };
            if min.is_some_and(|m| xs.len() < m) || max.is_some_and(|m| xs.len() > m) {
                return false;
            }
            if let Some(item) = &r.items {
                return xs.iter().all(|x| self.value(s, *items, x, item, today));
            }
            return true;
        }
        if let Some(rec) = &r.record {
            return self.rec(s, at, v, rec, today);
        }
        if let Some(sr) = &r.string {
            let Value::String(t) = v else { return false };
            let n = t.chars().count();
            if sr.min.is_some_and(|m| n < m) || sr.max.is_some_and(|m| n > m) {
                return false;
            }
            if sr.nonblank && t.chars().all(|c| self.whitespace.contains(&c)) {
                return false;
            }
            if let Some(p) = &sr.pattern {
                if !p.is_match(t) {
                    return false;
                }
            }
        }
        if let Some(nr) = &r.num {
            let Some(x) = number(v) else { return false };
            if nr.finite && !x.is_finite() {
                return false;
            }
            let exact = |bound: f64, f: fn(f64, f64) -> bool| match v {
                Value::Int(i) => f(*i as f64, bound),
                Value::Long(i) => f(*i as f64, bound),
                _ => f(x, bound),
            };
            if nr.ge.is_some_and(|b| !exact(b, |a, b| a >= b))
                || nr.gt.is_some_and(|b| !exact(b, |a, b| a > b))
                || nr.le.is_some_and(|b| !exact(b, |a, b| a <= b))
                || nr.lt.is_some_and(|b| !exact(b, |a, b| a < b))
            {
                return false;
            }
        }
        if r.uuid {
            let Value::String(t) = v else { return false };
            if uuid::Uuid::parse_str(t).is_err() {
                return false;
            }
        }
        if r.ts {
            let Value::Long(t) = v else { return false };
            if *t < MIN_MS || *t > MAX_MS {
                return false;
            }
        }
        if r.date {
            let t = match v {
                Value::Int(t) => *t as i64,
                Value::Long(t) => *t,
                _ => return false,
            };
            if !(MIN_DAY..=MAX_DAY).contains(&t) {
                return false;
            }
        }
        true
    }
}

/// The value at a path of records (from the record a check belongs to).
fn get<'a>(s: &Schema, at: usize, v: &'a Value, p: &[usize]) -> Option<(usize, &'a Value)> {
    let mut cur = (at, v);
    for idx in p {
        cur = field(s, cur.0, cur.1, *idx)?;
    }
    Some(cur)
}

fn cmp(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some((*x as i64).cmp(&(*y as i64))),
        (Value::Long(x), Value::Long(y)) => Some(x.cmp(y)),
        (Value::Int(x), Value::Long(y)) => Some((*x as i64).cmp(y)),
        (Value::Long(x), Value::Int(y)) => Some(x.cmp(&(*y as i64))),
        _ => number(a)?.partial_cmp(&number(b)?),
    }
}

fn check(s: &Schema, at: usize, v: &Value, c: &Check, today: i64) -> bool {
    use std::cmp::Ordering::*;
    match c {
        Check::Lt(a, b) | Check::Le(a, b) => {
            let (Some((_, x)), Some((_, y))) = (get(s, at, v, a), get(s, at, v, b)) else { return false };
            match cmp(x, y) {
                Some(Less) => true,
                Some(Equal) => matches!(c, Check::Le(..)),
                _ => false,
            }
        }
        Check::NotFutureDate(p) => match get(s, at, v, p) {
            None => true,
            Some((_, Value::Int(d))) => (*d as i64) <= today,
            Some((_, Value::Long(d))) => *d <= today,
            Some(_) => false,
        },
        Check::AlertLifecycle { status, revision, cleared, nation, partner } => {
            let status = get(s, at, v, status).and_then(|(a, x)| text(s, a, x));
            let revision = match get(s, at, v, revision) {
                Some((_, Value::Int(r))) => *r as i64,
                Some((_, Value::Long(r))) => *r,
                _ => return false,
            };
            let cleared = get(s, at, v, cleared).is_some();
            let status = status.as_deref();
            if cleared && status != Some("CLEARED") {
                return false;
            }
            if (status == Some("NEW") && revision != 0)
                || (matches!(status, Some("UPDATED") | Some("CLEARED")) && revision == 0)
            {
                return false;
            }
            let nation = get(s, at, v, nation).and_then(|(a, x)| text(s, a, x));
            let partner = get(s, at, v, partner).and_then(|(a, x)| text(s, a, x));
            nation == partner
        }
    }
}
