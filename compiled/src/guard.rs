//! The ingress guard's accept path (`consumers/ingress/checks.py`, `pipeline.py`): a partner's record, written
//! with the inbound schema in force, decoded once, checked (label, originator, the partial model's validation,
//! time), relabelled partner-origin (originator `partner.<code>`, caveats + `ORIGIN <CODE>`, the message id in its
//! canonical form) and encoded with the partner-origin schema. Only the accept path: a record the core does not
//! accept outright (any check fails, or anything it is not sure of: a message id not in canonical form, a
//! caveat that is not ASCII) is the reference's, which names the check and the reason of its quarantine. The
//! replay check (the seen ids) stays with the caller.

use crate::avro::{Node, Schema, Value};
use crate::program::{field, text, unwrap};
use crate::validate::Validator;

pub struct GuardConfig {
    pub code: String,              // upper case: RUS
    pub classifications: Vec<String>, // those at or below the inbound ceiling
    pub own_nation: String,        // FRA
    pub room: usize,               // caveats a record may carry (one left for the origin caveat)
    pub max_age_ms: i64,
    pub max_future_ms: i64,
    pub has_time: bool,
}

pub struct Guard {
    inbound: Schema,
    origin: Schema,
    validator: Validator,
    cfg: GuardConfig,
    label_at: usize,      // label's field index, inbound and origin alike (checked at construction)
    time_at: Option<usize>,
    lf: LabelFields,      // indices in the label record
    own: String,          // the partner's originator: its code in lower case
    own_unit: String,     // "<code>." : the prefix of its units
    relabelled: String,   // partner.<code>
    caveat: String,       // ORIGIN <CODE>
}

struct LabelFields {
    classification: usize,
    releasable_to: usize,
    caveats: usize,
    originator: usize,
    created_at: usize,
    message_id: usize,
}

fn record_fields(s: &Schema, at: usize) -> Result<(usize, Vec<(String, usize)>), String> {
    let mut at = at;
    loop {
        match &s.nodes[at] {
            Node::Union(bs) => {
                let non_null: Vec<usize> = bs.iter().copied().filter(|b| !matches!(s.nodes[*b], Node::Null)).collect();
                if non_null.len() != 1 {
                    return Err("a union other than [null, X]".into());
                }
                at = non_null[0];
            }
            Node::Record { fields, .. } => return Ok((at, fields.clone())),
            _ => return Err("not a record".into()),
        }
    }
}

fn index(fields: &[(String, usize)], name: &str) -> Result<usize, String> {
    fields.iter().position(|(n, _)| n == name).ok_or_else(|| format!("no field {name}"))
}

impl Guard {
    pub fn new(inbound: Schema, origin: Schema, validator: Validator, cfg: GuardConfig) -> Result<Guard, String> {
        let (_, top) = record_fields(&inbound, inbound.root)?;
        let (_, otop) = record_fields(&origin, origin.root)?;
        let names: Vec<&str> = top.iter().map(|(n, _)| n.as_str()).collect();
        let onames: Vec<&str> = otop.iter().map(|(n, _)| n.as_str()).collect();
        if names != onames {
            return Err(format!("inbound fields {names:?} are not the partner-origin schema's {onames:?}"));
        }
        let label_at = index(&top, "label")?;
        let (_, lfields) = record_fields(&inbound, top[label_at].1)?;
        let (_, olfields) = record_fields(&origin, otop[label_at].1)?;
        if lfields.iter().map(|f| &f.0).ne(olfields.iter().map(|f| &f.0)) {
            return Err("the labels differ".into());
        }
        let lf = LabelFields {
            classification: index(&lfields, "classification")?,
            releasable_to: index(&lfields, "releasable_to")?,
            caveats: index(&lfields, "caveats")?,
            originator: index(&lfields, "originator")?,
            created_at: index(&lfields, "created_at")?,
            message_id: index(&lfields, "message_id")?,
        };
        let time_at = if cfg.has_time { Some(index(&top, "time")?) } else { None };
        let own = cfg.code.to_lowercase();
        Ok(Guard {
            own_unit: format!("{own}."),
            relabelled: format!("partner.{own}"),
            caveat: format!("ORIGIN {}", cfg.code.to_uppercase()),
            own,
            inbound, origin, validator, cfg, label_at, time_at, lf,
        })
    }

    /// (canonical message id, the partner-origin record's Avro body) when every check the core runs passes.
    pub fn accept(&self, data: &[u8], now_ms: i64, today: i64) -> Option<(String, Vec<u8>)> {
        let s = &self.inbound;
        let v = s.decode(data).ok()?;
        let (lat, label) = field(s, s.root, &v, self.label_at)?;
        let get = |i: usize| field(s, lat, label, i);
        // label
        let (mat, mv) = get(self.lf.message_id)?;
        let mid = canonical_uuid(&text(s, mat, mv)?)?;
        let (cat, cv) = get(self.lf.classification)?;
        let cls = text(s, cat, cv)?;
        if !self.cfg.classifications.contains(&cls) {
            return None;
        }
        if !strings(s, get(self.lf.releasable_to))?.iter().any(|n| *n == self.cfg.own_nation) {
            return None;
        }
        let caveats = match get(self.lf.caveats) {
            None => Vec::new(),
            some => strings(s, some)?,
        };
        if caveats.len() > self.cfg.room || caveats.iter().any(|c| !c.is_ascii() || c.to_ascii_uppercase().starts_with("ORIGIN")) {
            return None;
        }
        // originator
        let (oat, ov) = get(self.lf.originator)?;
        let who = text(s, oat, ov)?;
        if !(who == self.own || who.starts_with(&self.own_unit)) {
            return None;
        }
        // validation (the partial model's rules)
        if !self.validator.valid(s, &v, today) {
            return None;
        }
        // time
        let low = now_ms - self.cfg.max_age_ms;
        let high = now_ms + self.cfg.max_future_ms;
        let in_window = |x: Option<(usize, &Value)>| matches!(x, Some((_, Value::Long(t))) if *t >= low && *t <= high);
        if !in_window(get(self.lf.created_at)) {
            return None;
        }
        if let Some(t) = self.time_at {
            if !in_window(field(s, s.root, &v, t)) {
                return None;
            }
        }
        // relabel into the partner-origin schema
        let mut out = convert(s, s.root, &v, &self.origin, self.origin.root).ok()?;
        let Value::Record(top) = &mut out else { return None };
        let Value::Record(lab) = &mut top[self.label_at] else { return None };
        lab[self.lf.originator] = Value::String(self.relabelled.clone());
        lab[self.lf.message_id] = Value::String(mid.clone());
        match &mut lab[self.lf.caveats] {
            Value::Array(xs) => xs.push(Value::String(self.caveat.clone())),
            _ => return None,
        }
        let mut bytes = Vec::with_capacity(data.len() + 32);
        self.origin.encode(&out, &mut bytes).ok()?;
        Some((mid, bytes))
    }
}

/// The list of strings at a field (None: absent, or not strings).
fn strings(s: &Schema, x: Option<(usize, &Value)>) -> Option<Vec<String>> {
    let (at, v) = x?;
    let (at, v) = unwrap(s, at, v);
    let (Node::Array(items), Value::Array(xs)) = (&s.nodes[at], v) else { return None };
    xs.iter().map(|x| {
        let (iat, iv) = unwrap(s, *items, x);
        text(s, iat, iv)
    }).collect()
}

/// A message id in the 8-4-4-4-12 hex form (either case), lower-cased as Python's ``str(uuid.UUID(...))``
/// gives it; any other form (braces, urn:, no hyphens, blanks) is left to the reference.
fn canonical_uuid(t: &str) -> Option<String> {
    let b = t.as_bytes();
    if b.len() != 36 {
        return None;
    }
    for (i, c) in b.iter().enumerate() {
        let hyphen = matches!(i, 8 | 13 | 18 | 23);
        if hyphen != (*c == b'-') || (!hyphen && !c.is_ascii_hexdigit()) {
            return None;
        }
    }
    Some(t.to_ascii_lowercase())
}

/// A value of one schema as a value of another of the same shape (fields by name, enum symbols by name, a
/// [null, X] union of one side being X on the other when the value is not null).
fn convert(fs: &Schema, fat: usize, v: &Value, ts: &Schema, tat: usize) -> Result<Value, String> {
    let (fat, v) = unwrap(fs, fat, v);
    if let Node::Union(bs) = &ts.nodes[tat] {
        let pick = if matches!(v, Value::Null) {
            bs.iter().position(|b| matches!(ts.nodes[*b], Node::Null))
        } else {
            bs.iter().position(|b| !matches!(ts.nodes[*b], Node::Null))
        }
        .ok_or("no branch for the value")?;
        return Ok(Value::Union(pick as u32, Box::new(convert(fs, fat, v, ts, bs[pick])?)));
    }
    Ok(match (&fs.nodes[fat], v, &ts.nodes[tat]) {
        (Node::Record { fields: ff, .. }, Value::Record(vs), Node::Record { fields: tf, .. }) => {
            let mut out = Vec::with_capacity(tf.len());
            for (name, tfat) in tf {
                let i = index(ff, name)?;
                out.push(convert(fs, ff[i].1, &vs[i], ts, *tfat)?);
            }
            Value::Record(out)
        }
        (Node::Enum { symbols: fsym, .. }, Value::Enum(i), Node::Enum { symbols: tsym, .. }) => {
            let name = &fsym[*i as usize];
            Value::Enum(tsym.iter().position(|s| s == name).ok_or("an enum symbol the target lacks")? as u32)
        }
        (Node::Array(fi), Value::Array(xs), Node::Array(ti)) => {
            Value::Array(xs.iter().map(|x| convert(fs, *fi, x, ts, *ti)).collect::<Result<_, _>>()?)
        }
        (Node::Map(fi), Value::Map(xs), Node::Map(ti)) => Value::Map(
            xs.iter().map(|(k, x)| Ok((k.clone(), convert(fs, *fi, x, ts, *ti)?))).collect::<Result<_, String>>()?,
        ),
        (Node::Record { .. } | Node::Enum { .. } | Node::Array(_) | Node::Map(_), _, _) => {
            return Err("shapes differ".into())
        }
        (a, v, b) if std::mem::discriminant(a) == std::mem::discriminant(b) => v.clone(),
        _ => return Err("primitive types differ".into()),
    })
}
