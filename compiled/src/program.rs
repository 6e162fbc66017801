//! One recipient's decision for one source, run on a decoded record: the program `release/program.py` exports
//! from a compiled policy, run as `release.decide` runs the policy (labels, reciprocity pause, the rules in order:
//! the first whose conditions all hold releases the record with its projection), and the released record encoded
//! with the recipient's derived schema.

use serde_json::Value as Json;

use crate::avro::{Node, Schema, Value};
use crate::transforms;

pub const RELEASE: &str = "RELEASE";
pub const WITHHOLD: &str = "WITHHOLD";
const LABEL_CEILING: &str = "label-ceiling";
const LABEL_RELEASABILITY: &str = "label-releasability";
const RECIPROCITY_PAUSE: &str = "reciprocity-pause";
const MALFORMED: &str = "malformed-record";

/// What one record comes to for one recipient.
pub struct Decided {
    pub decision: &'static str,
    pub rule: String,
    pub reason: String,
    pub released: Option<Vec<u8>>,
    /// Of a release: its envelope (`release.envelope`): the key, the released label.message_id (the header), the
    /// record timestamp and the end of its latest bucket.
    pub envelope: Option<EnvelopeOut>,
}

#[derive(Debug, Default)]
pub struct EnvelopeOut {
    pub key: Option<String>,
    pub message_id: Option<String>,
    pub timestamp_ms: Option<i64>,
    pub due_ms: Option<i64>,
}

type Path = Option<Vec<usize>>;

struct Envelope {
    key: Path,
    message_id: Path,
    timestamp: Option<(Path, bool)>,
    buckets: Vec<(Path, i64, bool)>,
}

enum Cond {
    Any(Vec<Cond>),
    All(Vec<Cond>),
    Leaf { op: Leaf, steps: Vec<(usize, bool)>, fail: String },
}

enum Leaf {
    Equals(Json),
    EqualsStr(String),
    InSet(Vec<Json>),
    Contains(Vec<Json>),
    Inside { multi: bool, bx: [f64; 4], lat: usize, lon: usize },
}

enum FieldOp {
    Null,
    Copy { src: usize },
    Record { src: usize, array: bool, project: Projection },
    Coarsen { src: usize, array: bool, grid: f64, lat: usize, lon: usize },
    Bucket { src: usize, array: bool, step: i64 },
    Pseudonymise { src: usize, array: bool },
}

struct Projection(Vec<FieldOp>);

struct Rule {
    id: String,
    reason: String,
    conditions: Vec<Cond>,
    project: Option<Projection>,
    key_missing: Option<String>,
    envelope: Envelope,
}

pub struct Program {
    input: Schema,
    output: Option<Schema>,
    key: Option<Vec<u8>>,
    partner: String,
    label: [usize; 3],
    levels: Vec<String>,
    ceiling: usize,
    above: Vec<Option<String>>,
    require_releasable_to: bool,
    not_releasable: String,
    category: String,
    malformed: String,
    no_rule: Option<String>,
    no_match: String,
    default_deny: String,
    key_missing_rule: String,
    rules: Vec<Rule>,
}

/// An error of the reference's kind: the name of the Python exception `decide` would have caught.
type Fault = &'static str;

fn s(j: &Json, k: &str) -> Result<String, String> {
    j.get(k).and_then(Json::as_str).map(str::to_string).ok_or_else(|| format!("program: no string {k}"))
}

fn u(j: &Json, k: &str) -> Result<usize, String> {
    j.get(k).and_then(Json::as_u64).map(|v| v as usize).ok_or_else(|| format!("program: no index {k}"))
}

fn b(j: &Json, k: &str) -> bool {
    j.get(k).and_then(Json::as_bool).unwrap_or(false)
}

fn arr<'a>(j: &'a Json, k: &str) -> Result<&'a Vec<Json>, String> {
    j.get(k).and_then(Json::as_array).ok_or_else(|| format!("program: no list {k}"))
}

fn cond(j: &Json) -> Result<Cond, String> {
    let op = s(j, "op")?;
    if op == "any" || op == "all" {
        let subs = arr(j, "subs")?.iter().map(cond).collect::<Result<Vec<_>, _>>()?;
        return Ok(if op == "any" { Cond::Any(subs) } else { Cond::All(subs) });
    }
    let steps = arr(j, "steps")?
        .iter()
        .map(|st| Ok((st[0].as_u64().ok_or("program: step index")? as usize, st[1].as_bool().unwrap_or(false))))
        .collect::<Result<Vec<_>, String>>()?;
    let leaf = match op.as_str() {
        "equals" => Leaf::Equals(j.get("value").cloned().ok_or("program: equals without value")?),
        "equals_str" => Leaf::EqualsStr(s(j, "value")?),
        "in_set" => Leaf::InSet(arr(j, "members")?.clone()),
        "contains" => Leaf::Contains(arr(j, "members")?.clone()),
        "inside" => {
            let bx = arr(j, "box")?;
            let ll = arr(j, "latlon")?;
            let f = |i: usize| bx[i].as_f64().ok_or("program: box");
            Leaf::Inside {
                multi: b(j, "multi") || steps.iter().any(|(_, a)| *a),
                bx: [f(0)?, f(1)?, f(2)?, f(3)?],
                lat: ll[0].as_u64().ok_or("program: lat")? as usize,
                lon: ll[1].as_u64().ok_or("program: lon")? as usize,
            }
        }
        other => return Err(format!("program: unknown condition {other}")),
    };
    Ok(Cond::Leaf { op: leaf, steps, fail: s(j, "fail")? })
}

fn path_of(j: Option<&Json>) -> Path {
    j.and_then(Json::as_array).map(|xs| xs.iter().filter_map(|x| x.as_u64().map(|v| v as usize)).collect())
}

fn envelope_of(j: Option<&Json>) -> Envelope {
    let get = |k: &str| j.and_then(|e| e.get(k));
    Envelope {
        key: path_of(get("key")),
        message_id: path_of(get("message_id")),
        timestamp: get("timestamp").filter(|t| !t.is_null()).map(|t| (path_of(t.get("path")), b(t, "micros"))),
        buckets: get("buckets")
            .and_then(Json::as_array)
            .map(|bs| {
                bs.iter()
                    .map(|x| (path_of(x.get("path")), x.get("size").and_then(Json::as_i64).unwrap_or(0), b(x, "micros")))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

fn projection(j: &Json) -> Result<Projection, String> {
    let mut out = Vec::new();
    for f in arr(j, "fields")? {
        let op = s(f, "op")?;
        out.push(match op.as_str() {
            "null" => FieldOp::Null,
            "copy" => FieldOp::Copy { src: u(f, "src")? },
            "record" => FieldOp::Record {
                src: u(f, "src")?,
                array: b(f, "array"),
                project: projection(f.get("project").ok_or("program: record without project")?)?,
            },
            "coarsen" => {
                let ll = arr(f, "latlon")?;
                FieldOp::Coarsen {
                    src: u(f, "src")?,
                    array: b(f, "array"),
                    grid: f.get("grid").and_then(Json::as_f64).ok_or("program: grid")?,
                    lat: ll[0].as_u64().ok_or("program: lat")? as usize,
                    lon: ll[1].as_u64().ok_or("program: lon")? as usize,
                }
            }
            "bucket" => FieldOp::Bucket {
                src: u(f, "src")?,
                array: b(f, "array"),
                step: f.get("step").and_then(Json::as_i64).ok_or("program: step")?,
            },
            "pseudonymise" => FieldOp::Pseudonymise { src: u(f, "src")?, array: b(f, "array") },
            other => return Err(format!("program: unknown field op {other}")),
        });
    }
    Ok(Projection(out))
}

impl Program {
    pub fn new(program: &str, input: Schema, output: Option<Schema>, key: Option<Vec<u8>>) -> Result<Program, String> {
        let j: Json = serde_json::from_str(program).map_err(|e| format!("program is not JSON: {e}"))?;
        let label = arr(&j, "label")?;
        let rules = match j.get("rules") {
            Some(Json::Array(rs)) => rs
                .iter()
                .map(|r| {
                    Ok(Rule {
                        id: s(r, "id")?,
                        reason: s(r, "reason")?,
                        conditions: arr(r, "conditions")?.iter().map(cond).collect::<Result<Vec<_>, String>>()?,
                        project: match r.get("project") {
                            Some(Json::Null) | None => None,
                            Some(p) => Some(projection(p)?),
                        },
                        key_missing: r.get("key_missing").and_then(Json::as_str).map(str::to_string),
                        envelope: envelope_of(r.get("envelope")),
                    })
                })
                .collect::<Result<Vec<_>, String>>()?,
            _ => Vec::new(),
        };
        Ok(Program {
            input,
            output,
            key,
            partner: s(&j, "partner")?,
            label: [
                label[0].as_u64().ok_or("program: label")? as usize,
                label[1].as_u64().ok_or("program: label")? as usize,
                label[2].as_u64().ok_or("program: label")? as usize,
            ],
            levels: arr(&j, "levels")?.iter().map(|v| v.as_str().unwrap_or("").to_string()).collect(),
            ceiling: u(&j, "ceiling")?,
            above: arr(&j, "above")?.iter().map(|v| v.as_str().map(str::to_string)).collect(),
            require_releasable_to: b(&j, "require_releasable_to"),
            not_releasable: s(&j, "not_releasable")?,
            category: s(&j, "category")?,
            malformed: s(&j, "malformed")?,
            no_rule: j.get("no_rule").and_then(Json::as_str).map(str::to_string),
            no_match: j.get("no_match").and_then(Json::as_str).unwrap_or("").to_string(),
            default_deny: j.get("default_deny").and_then(Json::as_str).unwrap_or("default-deny").to_string(),
            key_missing_rule: j.get("key_missing_rule").and_then(Json::as_str).unwrap_or("").to_string(),
            rules,
        })
    }

    fn withhold(&self, rule: &str, reason: String) -> Decided {
        Decided { decision: WITHHOLD, rule: rule.to_string(), reason, released: None, envelope: None }
    }

    /// The decision on one decoded record; `paused`: the reason of a pause of this source's category, if any.
    pub fn decide(&self, record: &Value, paused: Option<&str>) -> Result<Decided, String> {
        match self.decide_or_fault(record, paused) {
            Ok(d) => Ok(d),
            Err(Ok(fault)) => Ok(self.withhold(MALFORMED, format!("{} ({fault})", self.malformed))),
            Err(Err(e)) => Err(e),
        }
    }

    /// Err(Ok(fault)): what the reference withholds as malformed; Err(Err(text)): the released record does not
    /// encode with the derived schema (the pipeline dead-letters it).
    fn decide_or_fault(&self, record: &Value, paused: Option<&str>) -> Result<Decided, Result<Fault, String>> {
        let s = &self.input;
        let root = s.root;
        let (lat_at, label) = field(s, root, record, self.label[0]).ok_or(Ok("KeyError"))?;
        let (cat, class) = field(s, lat_at, label, self.label[1]).ok_or(Ok("KeyError"))?;
        let symbol = match (&s.nodes[cat], class) {
            (Node::Enum { symbols, .. }, Value::Enum(i)) => symbols[*i as usize].as_str(),
            _ => return Ok(self.withhold(LABEL_CEILING, "missing or unknown classification".into())),
        };
        let level = match self.levels.iter().position(|l| l == symbol) {
            Some(l) => l,
            None => return Ok(self.withhold(LABEL_CEILING, "missing or unknown classification".into())),
        };
        if level > self.ceiling {
            return Ok(self.withhold(LABEL_CEILING, self.above[level].clone().unwrap_or_default()));
        }
        if self.require_releasable_to {
            let named = match field(s, lat_at, label, self.label[2]) {
                Some((_, Value::Array(xs))) => xs.iter().any(|x| matches!(x, Value::String(t) if *t == self.partner)),
                _ => false,
            };
            if !named {
                return Ok(self.withhold(LABEL_RELEASABILITY, self.not_releasable.clone()));
            }
        }
        if let Some(reason) = paused {
            return Ok(self.withhold(RECIPROCITY_PAUSE, reason.to_string()));
        }
        if let Some(no_rule) = &self.no_rule {
            return Ok(self.withhold(&self.default_deny, no_rule.clone()));
        }
        let mut fails: Vec<String> = Vec::new();
        for rule in &self.rules {
            let mut fail = None;
            for c in &rule.conditions {
                if let Some(f) = check(s, root, record, c).map_err(Ok)? {
                    fail = Some(f);
                    break;
                }
            }
            match fail {
                None => {
                    let Some(project) = &rule.project else {
                        return Ok(self.withhold(&self.key_missing_rule, rule.key_missing.clone().unwrap_or_default()));
                    };
                    let view = self.project(root, record, project).map_err(Ok)?;
                    let out = self.output.as_ref().ok_or_else(|| Err("no derived schema".to_string()))?;
                    let mut bytes = Vec::new();
                    encode(out, out.root, &view, &mut bytes).map_err(Err)?;
                    return Ok(Decided {
                        decision: RELEASE,
                        rule: rule.id.clone(),
                        reason: rule.reason.clone(),
                        released: Some(bytes),
                        envelope: Some(envelope(&rule.envelope, &view)),
                    });
                }
                Some(f) => fails.push(f),
            }
        }
        let why = if fails.len() == 1 {
            format!("{}: {}", self.rules[0].id, fails[0])
        } else {
            self.rules.iter().zip(&fails).map(|(r, f)| format!("{}: {f}", r.id)).collect::<Vec<_>>().join("; ")
        };
        Ok(self.withhold(&self.default_deny, format!("{} ({why})", self.no_match)))
    }

    pub fn category(&self) -> &str {
        &self.category
    }

    pub fn input(&self) -> &Schema {
        &self.input
    }

    fn project(&self, at: usize, rec: &Value, p: &Projection) -> Result<Dyn, Fault> {
        let s = &self.input;
        let (at, rec) = unwrap(s, at, rec);
        let (Node::Record { fields, .. }, Value::Record(vs)) = (&s.nodes[at], rec) else {
            return Err("TypeError");
        };
        let mut out = Vec::with_capacity(p.0.len());
        for op in &p.0 {
            let (src, array) = match op {
                FieldOp::Null => {
                    out.push(Dyn::Null);
                    continue;
                }
                FieldOp::Copy { src } => {
                    out.push(to_dyn(s, fields[*src].1, &vs[*src]));
                    continue;
                }
                FieldOp::Record { src, array, .. }
                | FieldOp::Coarsen { src, array, .. }
                | FieldOp::Bucket { src, array, .. }
                | FieldOp::Pseudonymise { src, array } => (*src, *array),
            };
            let (fat, v) = unwrap(s, fields[src].1, &vs[src]);
            if matches!(v, Value::Null) {
                out.push(Dyn::Null);
                continue;
            }
            if array {
                let (Node::Array(items), Value::Array(xs)) = (&s.nodes[fat], v) else { return Err("TypeError") };
                let mut list = Vec::with_capacity(xs.len());
                for x in xs {
                    list.push(self.apply(op, *items, x)?);
                }
                out.push(Dyn::List(list));
            } else {
                out.push(self.apply(op, fat, v)?);
            }
        }
        Ok(Dyn::Rec(out))
    }

    fn apply(&self, op: &FieldOp, at: usize, v: &Value) -> Result<Dyn, Fault> {
        let s = &self.input;
        let (at, v) = unwrap(s, at, v);
        match op {
            FieldOp::Record { project, .. } => self.project(at, v, project),
            FieldOp::Coarsen { grid, lat, lon, .. } => {
                let (Node::Record { fields, .. }, Value::Record(vs)) = (&s.nodes[at], v) else { return Err("TypeError") };
                let num = |i: usize| -> Result<f64, Fault> {
                    number(unwrap(s, fields[i].1, &vs[i]).1).ok_or("TypeError")
                };
                Ok(Dyn::Rec(vec![
                    Dyn::Double(transforms::snap_down(num(*lat)?, *grid).map_err(fault_of)?),
                    Dyn::Double(transforms::snap_down(num(*lon)?, *grid).map_err(fault_of)?),
                ]))
            }
            FieldOp::Bucket { step, .. } => match v {
                Value::Long(t) => Ok(Dyn::Long(transforms::bucket(*t, *step).map_err(fault_of)?)),
                Value::Int(t) => Ok(Dyn::Long(transforms::bucket(*t as i64, *step).map_err(fault_of)?)),
                _ => Err("TypeError"),
            },
            FieldOp::Pseudonymise { .. } => match (v, &self.key) {
                (Value::String(t), Some(k)) => Ok(Dyn::Str(transforms::pseudonymise(k, t))),
                _ => Err("AttributeError"),
            },
            FieldOp::Null | FieldOp::Copy { .. } => Err("AssertionError"),
        }
    }
}

fn fault_of(e: String) -> Fault {
    match e.as_str() {
        "ValueError" => "ValueError",
        "OverflowError" => "OverflowError",
        _ => "ValueError",
    }
}

// ------------------------------------------------------------------------------------------ envelope

/// Every value at a path of the view, through lists, nulls skipped (`release.envelope._reader`).
fn reach<'a>(view: &'a Dyn, path: &[usize]) -> Vec<&'a Dyn> {
    let mut values = vec![view];
    for idx in path {
        let mut next = Vec::new();
        for v in values {
            if let Dyn::Rec(fs) = v {
                match fs.get(*idx) {
                    Some(Dyn::List(xs)) => next.extend(xs.iter()),
                    Some(Dyn::Null) | None => {}
                    Some(x) => next.push(x),
                }
            }
        }
        values = next;
    }
    values
}

/// The value at a path of records only (`released_key`'s walk: a list on the way gives nothing).
fn at_path<'a>(view: &'a Dyn, path: &[usize]) -> Option<&'a Dyn> {
    let mut v = view;
    for idx in path {
        match v {
            Dyn::Rec(fs) => v = fs.get(*idx)?,
            _ => return None,
        }
    }
    Some(v)
}

fn millis(values: Vec<&Dyn>, micros: bool) -> Vec<i64> {
    values
        .into_iter()
        .filter_map(|v| match v {
            Dyn::Long(t) => Some(if micros { t.div_euclid(1000) } else { *t }),
            _ => None,
        })
        .collect()
}

fn envelope(e: &Envelope, view: &Dyn) -> EnvelopeOut {
    let message_id = e.message_id.as_deref().and_then(|p| at_path(view, p)).and_then(|v| match v {
        Dyn::Str(t) => Some(t.clone()),
        Dyn::Long(i) => Some(i.to_string()),
        _ => None,
    });
    let key = match e.key.as_deref().and_then(|p| at_path(view, p)) {
        Some(Dyn::Str(t)) if !t.is_empty() => Some(t.clone()),
        _ => message_id.clone().filter(|m| !m.is_empty()),
    };
    let timestamp_ms = e
        .timestamp
        .as_ref()
        .and_then(|(p, micros)| p.as_deref().map(|p| millis(reach(view, p), *micros)))
        .and_then(|ts| ts.into_iter().min());
    let ends: Vec<i64> = e
        .buckets
        .iter()
        .flat_map(|(p, size, micros)| {
            p.as_deref().map(|p| millis(reach(view, p), *micros)).unwrap_or_default().into_iter().map(move |t| t + size)
        })
        .collect();
    EnvelopeOut { key, message_id, timestamp_ms, due_ms: ends.into_iter().max() }
}

// ------------------------------------------------------------------------------------------ values

/// A value of the released view, as the Python dict holds it: enum symbols as text, records positional in the
/// derived schema's field order.
#[derive(Debug, Clone)]
pub enum Dyn {
    Null,
    Bool(bool),
    Long(i64),
    Double(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Dyn>),
    Rec(Vec<Dyn>),
    Map(Vec<(String, Dyn)>),
}

/// Through any union to the value it holds (and its schema node).
pub(crate) fn unwrap<'a>(s: &Schema, mut at: usize, mut v: &'a Value) -> (usize, &'a Value) {
    while let (Node::Union(bs), Value::Union(i, inner)) = (&s.nodes[at], v) {
        at = bs[*i as usize];
        v = inner;
    }
    (at, v)
}

/// Field `idx` of a record value (through unions), None when the record or the field is null.
pub(crate) fn field<'a>(s: &Schema, at: usize, v: &'a Value, idx: usize) -> Option<(usize, &'a Value)> {
    let (at, v) = unwrap(s, at, v);
    match (&s.nodes[at], v) {
        (Node::Record { fields, .. }, Value::Record(vs)) => {
            let (fat, fv) = unwrap(s, fields.get(idx)?.1, vs.get(idx)?);
            if matches!(fv, Value::Null) {
                None
            } else {
                Some((fat, fv))
            }
        }
        _ => None,
    }
}

fn to_dyn(s: &Schema, at: usize, v: &Value) -> Dyn {
    let (at, v) = unwrap(s, at, v);
    match (&s.nodes[at], v) {
        (_, Value::Null) => Dyn::Null,
        (_, Value::Boolean(b)) => Dyn::Bool(*b),
        (_, Value::Int(i)) => Dyn::Long(*i as i64),
        (_, Value::Long(i)) => Dyn::Long(*i),
        (_, Value::Float(x)) => Dyn::Double(*x as f64),
        (_, Value::Double(x)) => Dyn::Double(*x),
        (_, Value::String(t)) => Dyn::Str(t.clone()),
        (_, Value::Bytes(b)) | (_, Value::Fixed(b)) => Dyn::Bytes(b.clone()),
        (Node::Enum { symbols, .. }, Value::Enum(i)) => Dyn::Str(symbols[*i as usize].clone()),
        (Node::Record { fields, .. }, Value::Record(vs)) => {
            Dyn::Rec(fields.iter().zip(vs).map(|((_, f), x)| to_dyn(s, *f, x)).collect())
        }
        (Node::Array(items), Value::Array(xs)) => Dyn::List(xs.iter().map(|x| to_dyn(s, *items, x)).collect()),
        (Node::Map(values), Value::Map(xs)) => {
            Dyn::Map(xs.iter().map(|(k, x)| (k.clone(), to_dyn(s, *values, x))).collect())
        }
        _ => Dyn::Null,
    }
}

pub(crate) fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Double(x) => Some(*x),
        Value::Float(x) => Some(*x as f64),
        Value::Int(i) => Some(*i as f64),
        Value::Long(i) => Some(*i as f64),
        _ => None,
    }
}

// ------------------------------------------------------------------------------------------ conditions

/// None when the condition holds, else its fail text; Err: what Python would raise on this record.
fn check(s: &Schema, root: usize, rec: &Value, c: &Cond) -> Result<Option<String>, Fault> {
    match c {
        Cond::All(subs) => {
            for sub in subs {
                if let Some(f) = check(s, root, rec, sub)? {
                    return Ok(Some(f));
                }
            }
            Ok(None)
        }
        Cond::Any(subs) => {
            let mut fails = Vec::new();
            for sub in subs {
                match check(s, root, rec, sub)? {
                    None => return Ok(None),
                    Some(f) => fails.push(f),
                }
            }
            Ok(Some(format!("none of ({})", fails.join("; "))))
        }
        Cond::Leaf { op, steps, fail } => {
            let holds = match op {
                Leaf::Equals(j) => single(s, root, rec, steps)?.is_some_and(|(at, v)| py_eq(s, at, v, j)),
                Leaf::EqualsStr(t) => single(s, root, rec, steps)?.is_some_and(|(at, v)| text(s, at, v).as_deref() == Some(t)),
                Leaf::InSet(ms) => single(s, root, rec, steps)?.is_some_and(|(at, v)| ms.iter().any(|m| py_eq(s, at, v, m))),
                Leaf::Contains(ms) => multi(s, root, rec, steps)?.iter().any(|(at, v)| ms.iter().any(|m| py_eq(s, *at, v, m))),
                Leaf::Inside { multi: is_multi, bx, lat, lon } => {
                    let values = if *is_multi {
                        multi(s, root, rec, steps)?
                    } else {
                        single(s, root, rec, steps)?.into_iter().collect()
                    };
                    let mut any = false;
                    for (at, p) in values {
                        let (at, p) = unwrap(s, at, p);
                        let (Node::Record { fields, .. }, Value::Record(vs)) = (&s.nodes[at], p) else {
                            return Err("TypeError");
                        };
                        let la = number(unwrap(s, fields[*lat].1, &vs[*lat]).1).ok_or("TypeError")?;
                        let lo = number(unwrap(s, fields[*lon].1, &vs[*lon]).1).ok_or("TypeError")?;
                        if bx[0] <= la && la <= bx[1] && bx[2] <= lo && lo <= bx[3] {
                            any = true;
                            break;
                        }
                    }
                    any
                }
            };
            Ok(if holds { None } else { Some(fail.clone()) })
        }
    }
}

/// The value at a path of records (`r.get(a).get(b)`); None when a record on the way, or the value, is null.
fn single<'a>(s: &Schema, root: usize, rec: &'a Value, steps: &[(usize, bool)]) -> Result<Option<(usize, &'a Value)>, Fault> {
    let mut cur = (root, rec);
    for (idx, _) in steps {
        let (at, v) = unwrap(s, cur.0, cur.1);
        match (&s.nodes[at], v) {
            (Node::Record { .. }, Value::Record(_)) => match field(s, at, v, *idx) {
                Some(next) => cur = next,
                None => return Ok(None),
            },
            (_, Value::Array(_)) => return Err("AttributeError"),
            _ => return Ok(None),
        }
    }
    Ok(Some(cur))
}

/// Every value the path reaches, arrays flattened (`release.conditions._multi_getter`).
fn multi<'a>(s: &Schema, root: usize, rec: &'a Value, steps: &[(usize, bool)]) -> Result<Vec<(usize, &'a Value)>, Fault> {
    let mut current = vec![(root, rec)];
    for (idx, is_array) in steps {
        let mut next = Vec::new();
        for (at, v) in current {
            let (at, v) = unwrap(s, at, v);
            if matches!(v, Value::Null) {
                continue;
            }
            if !matches!(v, Value::Record(_)) {
                return Err("AttributeError");
            }
            let Some((fat, x)) = field(s, at, v, *idx) else { continue };
            if *is_array {
                let (Node::Array(items), Value::Array(xs)) = (&s.nodes[fat], x) else { return Err("TypeError") };
                next.extend(xs.iter().map(|item| (*items, item)));
            } else {
                next.push((fat, x));
            }
        }
        current = next;
    }
    Ok(current.into_iter().map(|(at, v)| unwrap(s, at, v)).collect())
}

pub(crate) fn text(s: &Schema, at: usize, v: &Value) -> Option<String> {
    match (&s.nodes[at], v) {
        (_, Value::String(t)) => Some(t.clone()),
        (Node::Enum { symbols, .. }, Value::Enum(i)) => Some(symbols[*i as usize].clone()),
        _ => None,
    }
}

/// Python's `==` between a decoded value and a policy constant (str, bool, int or float).
fn py_eq(s: &Schema, at: usize, v: &Value, j: &Json) -> bool {
    if let Some(t) = j.as_str() {
        return text(s, at, v).as_deref() == Some(t);
    }
    let int_of = |v: &Value| -> Option<i128> {
        match v {
            Value::Boolean(b) => Some(*b as i128),
            Value::Int(i) => Some(*i as i128),
            Value::Long(i) => Some(*i as i128),
            _ => None,
        }
    };
    let (vi, vf) = match v {
        Value::Double(x) => (None, Some(*x)),
        Value::Float(x) => (None, Some(*x as f64)),
        other => (int_of(other), None),
    };
    let (ji, jf): (Option<i128>, Option<f64>) = match j {
        Json::Bool(b) => (Some(*b as i128), None),
        Json::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => (Some(i as i128), None),
            (None, Some(u)) => (Some(u as i128), None),
            _ => (None, n.as_f64()),
        },
        _ => return false,
    };
    match (vi, vf, ji, jf) {
        (Some(a), _, Some(b), _) => a == b,
        (_, Some(a), _, Some(b)) => a == b,
        (Some(i), _, _, Some(f)) | (_, Some(f), Some(i), _) => {
            f.is_finite() && f.fract() == 0.0 && f.abs() < 1.0e38 && (f as i128) == i
        }
        _ => false,
    }
}

// ------------------------------------------------------------------------------------------ encoding

/// `view` written with the derived schema as fastavro writes a dict: a union takes null for None, else its
/// first branch that fits the value.
pub fn encode(s: &Schema, at: usize, v: &Dyn, out: &mut Vec<u8>) -> Result<(), String> {
    use crate::avro::put_long;
    match (&s.nodes[at], v) {
        (Node::Union(bs), _) => {
            let i = bs
                .iter()
                .position(|b| fits(s, *b, v))
                .ok_or_else(|| format!("no branch of a union fits {}", kind(v)))?;
            put_long(out, i as i64);
            encode(s, bs[i], v, out)?;
        }
        (Node::Null, Dyn::Null) => {}
        (Node::Boolean, Dyn::Bool(b)) => out.push(*b as u8),
        (Node::Int, Dyn::Long(i)) => {
            let i = i32::try_from(*i).map_err(|_| format!("int out of range: {i}"))?;
            put_long(out, i as i64)
        }
        (Node::Long, Dyn::Long(i)) => put_long(out, *i),
        (Node::Float, Dyn::Double(x)) => out.extend_from_slice(&(*x as f32).to_le_bytes()),
        (Node::Double, Dyn::Double(x)) => out.extend_from_slice(&x.to_le_bytes()),
        (Node::Double, Dyn::Long(i)) => out.extend_from_slice(&(*i as f64).to_le_bytes()),
        (Node::String, Dyn::Str(t)) => {
            put_long(out, t.len() as i64);
            out.extend_from_slice(t.as_bytes())
        }
        (Node::Bytes, Dyn::Bytes(b)) => {
            put_long(out, b.len() as i64);
            out.extend_from_slice(b)
        }
        (Node::Fixed { size, .. }, Dyn::Bytes(b)) if b.len() == *size => out.extend_from_slice(b),
        (Node::Enum { name, symbols }, Dyn::Str(t)) => {
            let i = symbols.iter().position(|x| x == t).ok_or_else(|| format!("{t:?} is not a symbol of {name}"))?;
            put_long(out, i as i64)
        }
        (Node::Record { name, fields }, Dyn::Rec(vs)) => {
            if vs.len() != fields.len() {
                return Err(format!("record {name}: {} value(s) for {} field(s)", vs.len(), fields.len()));
            }
            for ((_, f), x) in fields.iter().zip(vs) {
                encode(s, *f, x, out)?;
            }
        }
        (Node::Array(items), Dyn::List(xs)) => {
            if !xs.is_empty() {
                put_long(out, xs.len() as i64);
                for x in xs {
                    encode(s, *items, x, out)?;
                }
            }
            out.push(0)
        }
        (Node::Map(values), Dyn::Map(xs)) => {
            if !xs.is_empty() {
                put_long(out, xs.len() as i64);
                for (k, x) in xs {
                    put_long(out, k.len() as i64);
                    out.extend_from_slice(k.as_bytes());
                    encode(s, *values, x, out)?;
                }
            }
            out.push(0)
        }
        (node, value) => return Err(format!("{} does not fit {node:?}", kind(value))),
    }
    Ok(())
}

fn fits(s: &Schema, at: usize, v: &Dyn) -> bool {
    match (&s.nodes[at], v) {
        (Node::Null, Dyn::Null) => true,
        (Node::Boolean, Dyn::Bool(_)) => true,
        (Node::Int | Node::Long, Dyn::Long(_)) => true,
        (Node::Float | Node::Double, Dyn::Double(_)) => true,
        (Node::String, Dyn::Str(_)) => true,
        (Node::Enum { symbols, .. }, Dyn::Str(t)) => symbols.contains(t),
        (Node::Bytes | Node::Fixed { .. }, Dyn::Bytes(_)) => true,
        (Node::Record { fields, .. }, Dyn::Rec(vs)) => fields.len() == vs.len(),
        (Node::Array(_), Dyn::List(_)) => true,
        (Node::Map(_), Dyn::Map(_)) => true,
        _ => false,
    }
}

fn kind(v: &Dyn) -> &'static str {
    match v {
        Dyn::Null => "null",
        Dyn::Bool(_) => "a boolean",
        Dyn::Long(_) => "an integer",
        Dyn::Double(_) => "a float",
        Dyn::Str(_) => "a string",
        Dyn::Bytes(_) => "bytes",
        Dyn::List(_) => "a list",
        Dyn::Rec(_) => "a record",
        Dyn::Map(_) => "a map",
    }
}
