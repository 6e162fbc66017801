//! `liaison_compiled`: the liaison bus's compiled hot path (issue 13), built by `make` with maturin.
//!
//! This first part holds what every later part stands on, each checked against the Python reference by
//! `tests/unit/test_compiled_differential.py`: the Avro binary codec driven by a parsed schema ([`avro`]) and the
//! release transforms ([`transforms`]: coarsen's snap, bucket, pseudonymise).

pub mod avro;
pub mod guard;
pub mod objects;
pub mod program;
pub mod transforms;
pub mod validate;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use avro::{Node, Schema, Value};

fn value_error(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// An Avro schema parsed once: decode, encode, and the record as plain Python values.
#[pyclass(frozen, module = "liaison_compiled")]
struct Codec {
    schema: Schema,
}

#[pymethods]
impl Codec {
    #[new]
    fn new(schema_json: &str) -> PyResult<Self> {
        Ok(Codec { schema: Schema::parse(schema_json).map_err(value_error)? })
    }

    /// The record decoded and encoded again (the same bytes for any valid record: the encoding is canonical).
    fn roundtrip<'py>(&self, py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let v = self.schema.decode(data).map_err(value_error)?;
        let mut out = Vec::with_capacity(data.len());
        self.schema.encode(&v, &mut out).map_err(value_error)?;
        Ok(PyBytes::new(py, &out))
    }

    /// The record as fastavro reads it from the same schema without logical types: dicts, lists, enum symbols,
    /// a union's value, ints, floats, str and bytes.
    fn to_python<'py>(&self, py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
        let v = self.schema.decode(data).map_err(value_error)?;
        to_py(py, &self.schema, self.schema.root, &v)
    }
}

fn to_py<'py>(py: Python<'py>, s: &Schema, at: usize, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match (&s.nodes[at], v) {
        (_, Value::Null) => py.None().into_bound(py),
        (_, Value::Boolean(b)) => b.into_pyobject(py)?.to_owned().into_any(),
        (_, Value::Int(i)) => i.into_pyobject(py)?.into_any(),
        (_, Value::Long(i)) => i.into_pyobject(py)?.into_any(),
        (_, Value::Float(x)) => (*x as f64).into_pyobject(py)?.into_any(),
        (_, Value::Double(x)) => x.into_pyobject(py)?.into_any(),
        (_, Value::Bytes(b)) | (_, Value::Fixed(b)) => PyBytes::new(py, b).into_any(),
        (_, Value::String(t)) => t.into_pyobject(py)?.into_any(),
        (Node::Record { fields, .. }, Value::Record(vs)) => {
            let d = PyDict::new(py);
            for ((name, f), x) in fields.iter().zip(vs) {
                d.set_item(name, to_py(py, s, *f, x)?)?;
            }
            d.into_any()
        }
        (Node::Enum { symbols, .. }, Value::Enum(i)) => symbols[*i as usize].clone().into_pyobject(py)?.into_any(),
        (Node::Array(items), Value::Array(xs)) => {
            let l = PyList::empty(py);
            for x in xs {
                l.append(to_py(py, s, *items, x)?)?;
            }
            l.into_any()
        }
        (Node::Map(values), Value::Map(xs)) => {
            let d = PyDict::new(py);
            for (k, x) in xs {
                d.set_item(k, to_py(py, s, *values, x)?)?;
            }
            d.into_any()
        }
        (Node::Union(branches), Value::Union(i, x)) => to_py(py, s, branches[*i as usize], x)?,
        (node, value) => return Err(value_error(format!("value {value:?} does not fit {node:?}"))),
    })
}

/// Confluent-framed Avro of a message model (or its `to_avro` dict) for one registered schema: what
/// `core.serde.Encoder.encode` writes with fastavro, without the model's dict (`objects`).
#[pyclass(frozen, module = "liaison_compiled")]
struct ModelEncoder {
    encoder: objects::ObjectEncoder,
    header: Vec<u8>,
}

#[pymethods]
impl ModelEncoder {
    #[new]
    fn new(py: Python<'_>, schema_json: &str, schema_id: u32) -> PyResult<Self> {
        let schema = Schema::parse(schema_json).map_err(value_error)?;
        let mut header = vec![0u8];
        header.extend_from_slice(&schema_id.to_be_bytes());
        Ok(ModelEncoder { encoder: objects::ObjectEncoder::new(py, &schema)?, header })
    }

    fn encode<'py>(&self, py: Python<'py>, obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(&self.header);
        self.encoder.encode(py, obj, &mut out)?;
        Ok(PyBytes::new(py, &out))
    }
}

/// One recipient's decision as the audit carries it: (partner, decision, rule, reason, policy version, output
/// topic, due ms, bytes).
type AuditDecision = (String, String, String, String, String, Option<String>, Option<i64>, Option<i64>);

/// Confluent-framed DecisionAudit v4, byte for byte what `consumers.shell.codec.AuditEncoder` writes (the Python
/// encoder stays the reference; `tests/unit/test_compiled_audit.py` compares them).
#[pyclass(frozen, module = "liaison_compiled")]
struct AuditEncoder {
    header: Vec<u8>,
    symbols: Vec<String>,
    #[pyo3(get)]
    schema_id: u32,
}

#[pymethods]
impl AuditEncoder {
    #[new]
    fn new(schema_json: &str, schema_id: u32) -> PyResult<Self> {
        let schema = Schema::parse(schema_json).map_err(value_error)?;
        let fields = match &schema.nodes[schema.root] {
            Node::Record { fields, .. } => fields.clone(),
            _ => return Err(value_error("DecisionAudit is not a record")),
        };
        let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
        let want = ["input_topic", "input_partition", "input_offset", "message_id", "message_type", "partner", "decision",
                    "rule", "reason", "policy_version", "output_topic", "decided_at", "forwarder", "due_at", "bytes",
                    "decisions"];
        if names != want {
            return Err(value_error(format!("DecisionAudit schema fields changed ({names:?}); update AuditEncoder")));
        }
        let decision = fields[6].1;
        let symbols = match &schema.nodes[decision] {
            Node::Union(bs) => match &schema.nodes[bs[1]] {
                Node::Enum { symbols, .. } => symbols.clone(),
                _ => return Err(value_error("decision is not [null, Outcome]")),
            },
            _ => return Err(value_error("decision is not [null, Outcome]")),
        };
        let mut header = vec![0u8];
        header.extend_from_slice(&schema_id.to_be_bytes());
        Ok(AuditEncoder { header, symbols, schema_id })
    }

    #[allow(clippy::too_many_arguments)]
    fn encode<'py>(&self, py: Python<'py>, topic: &str, partition: i64, offset: i64, message_id: Option<&str>,
                   message_type: Option<&str>, decided_at: i64, forwarder: &str, decisions: Vec<AuditDecision>)
                   -> PyResult<Bound<'py, PyBytes>> {
        let mut out = Vec::with_capacity(128 + 160 * decisions.len());
        out.extend_from_slice(&self.header);
        avro_string(&mut out, topic);
        avro_long(&mut out, partition);
        avro_long(&mut out, offset);
        avro_opt_string(&mut out, message_id);
        avro_opt_string(&mut out, message_type);
        out.extend_from_slice(&[0; 6]); // v1-v3 per-recipient fields: null in v4
        avro_long(&mut out, decided_at);
        avro_string(&mut out, forwarder);
        out.extend_from_slice(&[0; 2]);
        if !decisions.is_empty() {
            avro_long(&mut out, decisions.len() as i64);
            for (partner, decision, rule, reason, version, out_topic, due, size) in &decisions {
                avro_string(&mut out, partner);
                let i = self.symbols.iter().position(|s| s == decision)
                    .ok_or_else(|| value_error(format!("decision {decision:?} is not an Outcome")))?;
                avro_long(&mut out, i as i64);
                avro_string(&mut out, rule);
                avro_string(&mut out, reason);
                avro_string(&mut out, version);
                avro_opt_string(&mut out, out_topic.as_deref());
                avro_opt_long(&mut out, *due);
                avro_opt_long(&mut out, *size);
            }
        }
        out.push(0);
        Ok(PyBytes::new(py, &out))
    }
}

use objects::long as avro_long;

fn avro_string(out: &mut Vec<u8>, s: &str) {
    objects::sized(out, s.as_bytes());
}

fn avro_opt_string(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            out.push(2);
            avro_string(out, s);
        }
    }
}

fn avro_opt_long(out: &mut Vec<u8>, v: Option<i64>) {
    match v {
        None => out.push(0),
        Some(v) => {
            out.push(2);
            avro_long(out, v);
        }
    }
}

/// A release's envelope: (key, label.message_id, timestamp ms, due ms).
type Envelope = (Option<String>, Option<String>, Option<i64>, Option<i64>);

/// One recipient's decision for one source (`release/program.py`'s program), on the record's Avro bytes.
#[pyclass(frozen, module = "liaison_compiled")]
struct Decider {
    program: program::Program,
}

#[pymethods]
impl Decider {
    #[new]
    #[pyo3(signature = (program_json, input_schema_json, output_schema_json=None, key=None))]
    fn new(program_json: &str, input_schema_json: &str, output_schema_json: Option<&str>, key: Option<Vec<u8>>) -> PyResult<Self> {
        let input = Schema::parse(input_schema_json).map_err(value_error)?;
        let output = match output_schema_json {
            Some(text) => Some(Schema::parse(text).map_err(value_error)?),
            None => None,
        };
        Ok(Decider { program: program::Program::new(program_json, input, output, key).map_err(value_error)? })
    }

    /// (decision, rule, reason, released bytes or None, envelope or None) for the record ``data`` (unframed Avro of the input schema);
    /// ``paused``: category -> reason of the recipient's reciprocity pauses. A record that does not decode, or a
    /// release that does not encode with the derived schema, raises ValueError.
    #[pyo3(signature = (data, paused=None))]
    #[allow(clippy::type_complexity)]
    fn decide<'py>(&self, py: Python<'py>, data: &[u8], paused: Option<Bound<'py, PyDict>>)
                   -> PyResult<(&'static str, String, String, Option<Bound<'py, PyBytes>>, Option<Envelope>)> {
        let record = self.program_input().decode(data).map_err(value_error)?;
        let reason = paused_reason(paused.as_ref(), self.program.category())?;
        let d = self.program.decide(&record, reason.as_deref()).map_err(|e| value_error(format!("encode: {e}")))?;
        let env = d.envelope.map(|e| (e.key, e.message_id, e.timestamp_ms, e.due_ms));
        Ok((d.decision, d.rule, d.reason, d.released.map(|b| PyBytes::new(py, &b)), env))
    }
}

impl Decider {
    fn program_input(&self) -> &Schema {
        self.program.input()
    }
}

fn paused_reason(paused: Option<&Bound<'_, PyDict>>, category: &str) -> PyResult<Option<String>> {
    match paused {
        Some(d) => match d.get_item(category)? {
            Some(r) => Ok(Some(r.extract()?)),
            None => Ok(None),
        },
        None => Ok(None),
    }
}

/// Every recipient's decision for one source, the record decoded once: `Router(input_schema_json, [(recipient,
/// program_json, derived_schema_json or None, key or None), ...])`.
#[pyclass(frozen, module = "liaison_compiled")]
struct Router {
    input: Schema,
    programs: Vec<(String, program::Program)>,
    validator: Option<validate::Validator>,
}

/// Days since the epoch, today (UTC): what a date of birth must not be after.
fn today() -> i64 {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    secs.div_euclid(86_400)
}

/// The ingress guard's accept path for one partner and type (`guard`): a record's Avro body in, the partner-origin
/// record out when the core accepts it outright.
#[pyclass(frozen, module = "liaison_compiled")]
struct Guard {
    guard: guard::Guard,
}

#[pymethods]
impl Guard {
    #[new]
    #[allow(clippy::too_many_arguments)]
    fn new(inbound_schema_json: &str, origin_schema_json: &str, rules_json: &str, code: String,
           classifications: Vec<String>, own_nation: String, room: usize, max_age_ms: i64, max_future_ms: i64,
           has_time: bool) -> PyResult<Self> {
        let cfg = guard::GuardConfig { code, classifications, own_nation, room, max_age_ms, max_future_ms, has_time };
        Ok(Guard {
            guard: guard::Guard::new(
                Schema::parse(inbound_schema_json).map_err(value_error)?,
                Schema::parse(origin_schema_json).map_err(value_error)?,
                validate::Validator::new(rules_json).map_err(value_error)?,
                cfg,
            )
            .map_err(value_error)?,
        })
    }

    /// (canonical message id, the partner-origin record's Avro body), or None: the reference decides.
    fn accept<'py>(&self, py: Python<'py>, data: &[u8], now_ms: i64) -> Option<(String, Bound<'py, PyBytes>)> {
        self.guard.accept(data, now_ms, today()).map(|(mid, body)| (mid, PyBytes::new(py, &body)))
    }
}

/// Does a record pass the models' validation (`schemas/models/rules.py`'s rules)?
#[pyclass(frozen, module = "liaison_compiled")]
struct Validator {
    schema: Schema,
    validator: validate::Validator,
}

#[pymethods]
impl Validator {
    #[new]
    fn new(schema_json: &str, rules_json: &str) -> PyResult<Self> {
        Ok(Validator {
            schema: Schema::parse(schema_json).map_err(value_error)?,
            validator: validate::Validator::new(rules_json).map_err(value_error)?,
        })
    }

    /// True when the record (unframed Avro) passes; a record that does not decode raises ValueError.
    fn valid(&self, data: &[u8]) -> PyResult<bool> {
        let v = self.schema.decode(data).map_err(value_error)?;
        Ok(self.validator.valid(&self.schema, &v, today()))
    }
}

#[pymethods]
impl Router {
    #[new]
    #[pyo3(signature = (input_schema_json, recipients, validation=None))]
    fn new(input_schema_json: &str, recipients: Vec<(String, String, Option<String>, Option<Vec<u8>>)>,
           validation: Option<&str>) -> PyResult<Self> {
        let input = Schema::parse(input_schema_json).map_err(value_error)?;
        let mut programs = Vec::with_capacity(recipients.len());
        for (name, program_json, derived, key) in recipients {
            let output = match derived {
                Some(text) => Some(Schema::parse(&text).map_err(value_error)?),
                None => None,
            };
            let p = program::Program::new(&program_json, input.clone(), output, key)
                .map_err(|e| value_error(format!("{name}: {e}")))?;
            programs.push((name, p));
        }
        let validator = match validation {
            Some(rules) => Some(validate::Validator::new(rules).map_err(value_error)?),
            None => None,
        };
        Ok(Router { input, programs, validator })
    }

    /// (the record's label.message_id, :meth:`decide`'s rows), or None when the record fails validation or has no
    /// message id as text: the forwarder's compiled path (anything else is the reference's to do).
    #[allow(clippy::type_complexity)]
    #[pyo3(signature = (data, paused=None))]
    fn route<'py>(&self, py: Python<'py>, data: &[u8], paused: Option<Bound<'py, PyDict>>)
                  -> PyResult<Option<(String, Vec<(String, &'static str, String, String, Option<Bound<'py, PyBytes>>, Option<Envelope>)>)>> {
        let record = self.input.decode(data).map_err(value_error)?;
        let Some(message_id) = message_id(&self.input, &record) else { return Ok(None) };
        Ok(self.rows(py, &record, paused)?.map(|rows| (message_id, rows)))
    }

    /// [(recipient, decision, rule, reason, released bytes or None, envelope or None)] in the recipients' order,
    /// or None when the record fails the models' validation (given ``validation``: the reference writes why);
    /// ``paused``: recipient -> {category: reason}. A record that does not decode raises ValueError; a release
    /// that does not encode is ValueError naming the recipient.
    #[allow(clippy::type_complexity)]
    #[pyo3(signature = (data, paused=None))]
    fn decide<'py>(&self, py: Python<'py>, data: &[u8], paused: Option<Bound<'py, PyDict>>)
                   -> PyResult<Option<Vec<(String, &'static str, String, String, Option<Bound<'py, PyBytes>>, Option<Envelope>)>>> {
        let record = self.input.decode(data).map_err(value_error)?;
        self.rows(py, &record, paused)
    }
}

fn message_id(s: &Schema, record: &Value) -> Option<String> {
    let Node::Record { fields, .. } = &s.nodes[s.root] else { return None };
    let (_, label_at) = fields.first()?;
    let Value::Record(vs) = record else { return None };
    let (at, label) = program::unwrap(s, *label_at, vs.first()?);
    let (Node::Record { fields, .. }, Value::Record(ls)) = (&s.nodes[at], label) else { return None };
    let i = fields.iter().position(|(n, _)| n == "message_id")?;
    match program::unwrap(s, fields[i].1, &ls[i]).1 {
        Value::String(t) => Some(t.clone()),
        _ => None,
    }
}

impl Router {
    #[allow(clippy::type_complexity)]
    fn rows<'py>(&self, py: Python<'py>, record: &Value, paused: Option<Bound<'py, PyDict>>)
                 -> PyResult<Option<Vec<(String, &'static str, String, String, Option<Bound<'py, PyBytes>>, Option<Envelope>)>>> {
        if let Some(v) = &self.validator {
            if !v.valid(&self.input, record, today()) {
                return Ok(None);
            }
        }
        let mut out = Vec::with_capacity(self.programs.len());
        for (name, p) in &self.programs {
            let mine = match &paused {
                Some(d) => d.get_item(name)?.map(|x| x.cast_into::<PyDict>()).transpose().map_err(|e| value_error(e.to_string()))?,
                None => None,
            };
            let reason = paused_reason(mine.as_ref(), p.category())?;
            let d = p.decide(record, reason.as_deref()).map_err(|e| value_error(format!("{name}: encode: {e}")))?;
            let env = d.envelope.map(|e| (e.key, e.message_id, e.timestamp_ms, e.due_ms));
            out.push((name.clone(), d.decision, d.rule, d.reason, d.released.map(|b| PyBytes::new(py, &b)), env));
        }
        Ok(Some(out))
    }
}

/// `release.transforms.snap_down`; the name of the exception Python raises (ValueError, OverflowError) otherwise.
#[pyfunction]
fn snap_down(value: f64, grid_deg: f64) -> PyResult<f64> {
    transforms::snap_down(value, grid_deg).map_err(PyValueError::new_err)
}

/// A raw timestamp's bucket start (`make_bucket` on an int): ``value - value % step``.
#[pyfunction]
fn bucket(value: i64, step: i64) -> PyResult<i64> {
    if step <= 0 {
        return Err(PyValueError::new_err("step must be positive"));
    }
    transforms::bucket(value, step).map_err(PyValueError::new_err)
}

/// `make_pseudonymise(key)(value)`.
#[pyfunction]
fn pseudonymise(key: &[u8], value: &str) -> String {
    transforms::pseudonymise(key, value)
}

#[pymodule]
fn liaison_compiled(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Codec>()?;
    m.add_class::<ModelEncoder>()?;
    m.add_class::<AuditEncoder>()?;
    m.add_class::<Decider>()?;
    m.add_class::<Router>()?;
    m.add_class::<Validator>()?;
    m.add_class::<Guard>()?;
    m.add_function(wrap_pyfunction!(snap_down, m)?)?;
    m.add_function(wrap_pyfunction!(bucket, m)?)?;
    m.add_function(wrap_pyfunction!(pseudonymise, m)?)?;
    Ok(())
}
