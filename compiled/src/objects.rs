//! Avro encoding straight from Python objects: a pydantic message model (fields read as attributes), or the
//! dict `schemas.models.to_avro` makes of it, to the bytes fastavro's `schemaless_writer` writes for the same
//! schema. The typed producer's hot path: no `model_dump`, no intermediate dict.
//!
//! Values as a model holds them or fastavro accepts them: enums as `Enum` members or symbol strings, UUIDs as
//! `uuid.UUID` or strings, `timestamp-millis` as aware datetimes or ints, `date` as dates or ints. Unions must be
//! `[null, X]` or `[X, null]` (all the project's schemas have); any other schema shape is refused at
//! construction, so a caller falls back to fastavro.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

use crate::avro::{Node, Schema};

enum Kind {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
    Uuid,
    TimestampMillis,
    Date,
    Record(Vec<(Py<PyString>, String, usize)>),
    Enum(Vec<String>),
    Array(usize),
    Map(usize),
    /// `[null, X]` (null_at 0) or `[X, null]` (null_at 1)
    Nullable { null_at: u8, other: usize },
    Fixed(usize),
}

pub struct ObjectEncoder {
    kinds: Vec<Kind>,
    root: usize,
    epoch: Py<PyAny>,
    /// `uuid.UUID`: an object of exactly this type is formatted from its `int` (its `__str__`, in Python, costs
    /// more than the rest of the field); a subclass goes through `str()`, which it may have redefined
    uuid_type: Py<PyAny>,
}

fn bad(msg: impl Into<String>) -> PyErr {
    PyValueError::new_err(msg.into())
}

impl ObjectEncoder {
    pub fn new(py: Python<'_>, schema: &Schema) -> PyResult<Self> {
        let mut kinds = Vec::with_capacity(schema.nodes.len());
        for (at, node) in schema.nodes.iter().enumerate() {
            let logical = schema.logical.get(&at).map(String::as_str);
            kinds.push(match (node, logical) {
                (Node::Long, Some("timestamp-millis")) => Kind::TimestampMillis,
                (Node::Int, Some("date")) => Kind::Date,
                (Node::String, Some("uuid")) => Kind::Uuid,
                (_, Some(other)) => return Err(bad(format!("logical type {other} is not supported"))),
                (Node::Null, None) => Kind::Null,
                (Node::Boolean, None) => Kind::Boolean,
                (Node::Int, None) => Kind::Int,
                (Node::Long, None) => Kind::Long,
                (Node::Float, None) => Kind::Float,
                (Node::Double, None) => Kind::Double,
                (Node::Bytes, None) => Kind::Bytes,
                (Node::String, None) => Kind::String,
                (Node::Record { fields, .. }, None) => Kind::Record(
                    fields.iter().map(|(n, f)| (PyString::intern(py, n).unbind(), n.clone(), *f)).collect(),
                ),
                (Node::Enum { symbols, .. }, None) => Kind::Enum(symbols.clone()),
                (Node::Array(items), None) => Kind::Array(*items),
                (Node::Map(values), None) => Kind::Map(*values),
                (Node::Fixed { size, .. }, None) => Kind::Fixed(*size),
                (Node::Union(branches), None) => {
                    let nulls: Vec<usize> =
                        branches.iter().enumerate().filter(|(_, b)| matches!(schema.nodes[**b], Node::Null)).map(|(i, _)| i).collect();
                    if branches.len() != 2 || nulls.len() != 1 {
                        return Err(bad("only [null, X] unions are supported"));
                    }
                    let null_at = nulls[0] as u8;
                    Kind::Nullable { null_at, other: branches[1 - nulls[0]] }
                }
            });
        }
        let datetime = py.import("datetime")?;
        let utc = datetime.getattr("timezone")?.getattr("utc")?;
        let epoch = datetime.getattr("datetime")?.call1((1970, 1, 1, 0, 0, 0, 0, utc))?.unbind();
        let uuid_type = py.import("uuid")?.getattr("UUID")?.unbind();
        Ok(ObjectEncoder { kinds, root: schema.root, epoch, uuid_type })
    }

    pub fn encode(&self, py: Python<'_>, obj: &Bound<'_, PyAny>, out: &mut Vec<u8>) -> PyResult<()> {
        self.write(py, obj, self.root, out, "")
    }

    fn write(&self, py: Python<'_>, obj: &Bound<'_, PyAny>, at: usize, out: &mut Vec<u8>, path: &str) -> PyResult<()> {
        match &self.kinds[at] {
            Kind::Null => {
                if !obj.is_none() {
                    return Err(bad(format!("{path}: expected None")));
                }
            }
            Kind::Boolean => out.push(obj.is_truthy()? as u8),
            Kind::Int => {
                let v: i64 = obj.extract().map_err(|_| bad(format!("{path}: expected an int")))?;
                if i32::try_from(v).is_err() {
                    return Err(bad(format!("{path}: int out of range: {v}")));
                }
                long(out, v);
            }
            Kind::Long => long(out, obj.extract().map_err(|_| bad(format!("{path}: expected an int")))?),
            Kind::Float => {
                let v: f64 = obj.extract().map_err(|_| bad(format!("{path}: expected a number")))?;
                out.extend_from_slice(&(v as f32).to_le_bytes());
            }
            Kind::Double => {
                let v: f64 = obj.extract().map_err(|_| bad(format!("{path}: expected a number")))?;
                out.extend_from_slice(&v.to_le_bytes());
            }
            Kind::Bytes => {
                let b = obj.cast::<PyBytes>().map_err(|_| bad(format!("{path}: expected bytes")))?;
                sized(out, b.as_bytes());
            }
            Kind::Fixed(size) => {
                let b = obj.cast::<PyBytes>().map_err(|_| bad(format!("{path}: expected bytes")))?;
                if b.as_bytes().len() != *size {
                    return Err(bad(format!("{path}: fixed of {size} bytes expected")));
                }
                out.extend_from_slice(b.as_bytes());
            }
            Kind::String => string(out, obj, path)?,
            Kind::Uuid => {
                if obj.is_instance_of::<PyString>() {
                    string(out, obj, path)?;
                } else if obj.get_type().is(self.uuid_type.bind(py)) {
                    // uuid.UUID: its canonical form (as str() and fastavro write it), from its 128-bit int
                    let v: u128 = obj.getattr(pyo3::intern!(py, "int"))?.extract()?;
                    sized(out, canonical_uuid(v).as_bytes());
                } else {
                    string(out, obj.str()?.as_any(), path)?;
                }
            }
            Kind::TimestampMillis => {
                if obj.is_instance_of::<pyo3::types::PyInt>() {
                    long(out, obj.extract()?);
                } else {
                    if obj.getattr(pyo3::intern!(py, "tzinfo"))?.is_none() {
                        return Err(bad(format!("{path}: a naive datetime (no time zone)")));
                    }
                    // fastavro: (days * 86400 + seconds) * 1000 + microseconds // 1000 of (value - epoch)
                    let d = obj.sub(self.epoch.bind(py))?;
                    let days: i64 = d.getattr(pyo3::intern!(py, "days"))?.extract()?;
                    let secs: i64 = d.getattr(pyo3::intern!(py, "seconds"))?.extract()?;
                    let micros: i64 = d.getattr(pyo3::intern!(py, "microseconds"))?.extract()?;
                    long(out, (days * 86_400 + secs) * 1000 + micros / 1000);
                }
            }
            Kind::Date => {
                if obj.is_instance_of::<pyo3::types::PyInt>() {
                    long(out, obj.extract()?);
                } else {
                    let ordinal: i64 = obj.call_method0(pyo3::intern!(py, "toordinal"))?.extract()?;
                    long(out, ordinal - 719_163);
                }
            }
            Kind::Enum(symbols) => {
                let value = if obj.is_instance_of::<PyString>() {
                    obj.clone()
                } else {
                    obj.getattr(pyo3::intern!(py, "value"))? // an Enum member: its value is the symbol
                };
                let s = value.cast::<PyString>().map_err(|_| bad(format!("{path}: expected an enum symbol")))?;
                let s = s.to_str()?;
                let i = symbols.iter().position(|x| x == s).ok_or_else(|| bad(format!("{path}: {s:?} is not a symbol")))?;
                long(out, i as i64);
            }
            Kind::Record(fields) => {
                if let Ok(d) = obj.cast::<PyDict>() {
                    for (key, name, f) in fields {
                        match d.get_item(key.bind(py))? {
                            Some(v) => self.write(py, &v, *f, out, name)?,
                            None => self.write(py, py.None().bind(py), *f, out, name)?,
                        }
                    }
                } else {
                    for (key, name, f) in fields {
                        self.write(py, &obj.getattr(key.bind(py))?, *f, out, name)?;
                    }
                }
            }
            Kind::Array(items) => {
                let n = obj.len()?;
                if n > 0 {
                    long(out, n as i64);
                    for item in obj.try_iter()? {
                        self.write(py, &item?, *items, out, path)?;
                    }
                }
                out.push(0);
            }
            Kind::Map(values) => {
                let d = obj.cast::<PyDict>().map_err(|_| bad(format!("{path}: expected a dict")))?;
                if !d.is_empty() {
                    long(out, d.len() as i64);
                    for (k, v) in d.iter() {
                        string(out, &k, path)?;
                        self.write(py, &v, *values, out, path)?;
                    }
                }
                out.push(0);
            }
            Kind::Nullable { null_at, other } => {
                if obj.is_none() {
                    out.push(null_at * 2);
                } else {
                    out.push((1 - null_at) * 2);
                    self.write(py, obj, *other, out, path)?;
                }
            }
        }
        Ok(())
    }
}

/// An Avro int or long: zig-zag, then base-128 varint.
pub(crate) fn long(out: &mut Vec<u8>, v: i64) {
    let mut n = ((v << 1) ^ (v >> 63)) as u64;
    while n & !0x7F != 0 {
        out.push(((n & 0x7F) | 0x80) as u8);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Avro bytes or string: the length, then the bytes.
pub(crate) fn sized(out: &mut Vec<u8>, b: &[u8]) {
    long(out, b.len() as i64);
    out.extend_from_slice(b);
}

fn string(out: &mut Vec<u8>, obj: &Bound<'_, PyAny>, path: &str) -> PyResult<()> {
    let s = obj.cast::<PyString>().map_err(|_| bad(format!("{path}: expected a str")))?;
    sized(out, s.to_str()?.as_bytes());
    Ok(())
}

/// 8-4-4-4-12 lowercase hex of a 128-bit UUID: what `str(uuid.UUID(int=v))` gives.
pub fn canonical_uuid(v: u128) -> String {
    let h = format!("{v:032x}");
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}
