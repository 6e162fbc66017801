//! Avro binary encoding, driven by a parsed schema: decode bytes into a [`Value`] tree and encode it back.
//!
//! The schema is parsed once into an arena of [`Node`]s (named types referenced by index, so a type used twice,
//! or recursively, is one node). What the project's schemas use is covered: records, enums, arrays, maps, unions,
//! fixed and every primitive; logical types (timestamp-millis, date, uuid) are their underlying type here: the
//! values stay as the wire has them (an int of milliseconds, a string).

use std::collections::HashMap;
use std::fmt;

use serde_json::Value as Json;

#[derive(Debug, Clone)]
pub enum Node {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
    Record { name: String, fields: Vec<(String, usize)> },
    Enum { name: String, symbols: Vec<String> },
    Array(usize),
    Map(usize),
    Union(Vec<usize>),
    Fixed { name: String, size: usize },
}

/// A decoded value. Records hold their fields in schema order; enums their symbol index; unions the branch.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Boolean(bool),
    Int(i32),
    Long(i64),
    Float(f32),
    Double(f64),
    Bytes(Vec<u8>),
    String(String),
    Record(Vec<Value>),
    Enum(u32),
    Array(Vec<Value>),
    Map(Vec<(String, Value)>),
    Union(u32, Box<Value>),
    Fixed(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct AvroError(pub String);

impl fmt::Display for AvroError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, AvroError> {
    Err(AvroError(msg.into()))
}

/// A parsed schema: its nodes and the root's index.
#[derive(Debug, Clone)]
pub struct Schema {
    pub nodes: Vec<Node>,
    pub root: usize,
    /// node index -> its logical type (timestamp-millis, date, uuid, ...), for encoders from Python objects
    pub logical: HashMap<usize, String>,
}

impl Schema {
    pub fn parse(text: &str) -> Result<Schema, AvroError> {
        let json: Json = serde_json::from_str(text).map_err(|e| AvroError(format!("schema is not JSON: {e}")))?;
        let mut p = Parser { nodes: Vec::new(), named: HashMap::new(), logical: HashMap::new() };
        let root = p.node(&json, "")?;
        Ok(Schema { nodes: p.nodes, root, logical: p.logical })
    }

    pub fn decode(&self, data: &[u8]) -> Result<Value, AvroError> {
        let mut r = Reader { data, pos: 0 };
        let v = self.read(&mut r, self.root)?;
        if r.pos != data.len() {
            return err(format!("{} byte(s) left after the record", data.len() - r.pos));
        }
        Ok(v)
    }

    pub fn encode(&self, value: &Value, out: &mut Vec<u8>) -> Result<(), AvroError> {
        self.write(out, self.root, value)
    }

    fn read(&self, r: &mut Reader, at: usize) -> Result<Value, AvroError> {
        Ok(match &self.nodes[at] {
            Node::Null => Value::Null,
            Node::Boolean => match r.byte()? {
                0 => Value::Boolean(false),
                1 => Value::Boolean(true),
                b => return err(format!("invalid boolean byte {b}")),
            },
            Node::Int => {
                let v = r.long()?;
                Value::Int(i32::try_from(v).map_err(|_| AvroError(format!("int out of range: {v}")))?)
            }
            Node::Long => Value::Long(r.long()?),
            Node::Float => Value::Float(f32::from_le_bytes(r.take(4)?.try_into().unwrap())),
            Node::Double => Value::Double(f64::from_le_bytes(r.take(8)?.try_into().unwrap())),
            Node::Bytes => Value::Bytes(r.sized()?.to_vec()),
            Node::String => Value::String(
                String::from_utf8(r.sized()?.to_vec()).map_err(|_| AvroError("string is not UTF-8".into()))?,
            ),
            Node::Record { fields, .. } => {
                let mut out = Vec::with_capacity(fields.len());
                for (_, f) in fields {
                    out.push(self.read(r, *f)?);
                }
                Value::Record(out)
            }
            Node::Enum { name, symbols } => {
                let i = r.long()?;
                if i < 0 || i as usize >= symbols.len() {
                    return err(format!("enum {name}: index {i} out of range"));
                }
                Value::Enum(i as u32)
            }
            Node::Array(items) => {
                let mut out = Vec::new();
                let sized = !matches!(self.nodes[*items], Node::Null);
                loop {
                    let n = r.block_count()?;
                    if n == 0 {
                        break;
                    }
                    if (sized && n > r.left() as u64) || n > MAX_ITEMS {
                        return err(format!("array block of {n} item(s) beyond the record"));
                    }
                    for _ in 0..n {
                        out.push(self.read(r, *items)?);
                    }
                }
                Value::Array(out)
            }
            Node::Map(values) => {
                let mut out = Vec::new();
                loop {
                    let n = r.block_count()?;
                    if n == 0 {
                        break;
                    }
                    if n > r.left() as u64 {
                        return err(format!("map block of {n} item(s) beyond the record"));
                    }
                    for _ in 0..n {
                        let k = String::from_utf8(r.sized()?.to_vec())
                            .map_err(|_| AvroError("map key is not UTF-8".into()))?;
                        out.push((k, self.read(r, *values)?));
                    }
                }
                Value::Map(out)
            }
            Node::Union(branches) => {
                let i = r.long()?;
                if i < 0 || i as usize >= branches.len() {
                    return err(format!("union branch {i} out of range"));
                }
                Value::Union(i as u32, Box::new(self.read(r, branches[i as usize])?))
            }
            Node::Fixed { size, .. } => Value::Fixed(r.take(*size)?.to_vec()),
        })
    }

    fn write(&self, out: &mut Vec<u8>, at: usize, v: &Value) -> Result<(), AvroError> {
        match (&self.nodes[at], v) {
            (Node::Null, Value::Null) => {}
            (Node::Boolean, Value::Boolean(b)) => out.push(*b as u8),
            (Node::Int, Value::Int(i)) => put_long(out, *i as i64),
            (Node::Long, Value::Long(i)) => put_long(out, *i),
            (Node::Float, Value::Float(x)) => out.extend_from_slice(&x.to_le_bytes()),
            (Node::Double, Value::Double(x)) => out.extend_from_slice(&x.to_le_bytes()),
            (Node::Bytes, Value::Bytes(b)) => put_bytes(out, b),
            (Node::String, Value::String(s)) => put_bytes(out, s.as_bytes()),
            (Node::Record { name, fields }, Value::Record(vs)) => {
                if vs.len() != fields.len() {
                    return err(format!("record {name}: {} value(s) for {} field(s)", vs.len(), fields.len()));
                }
                for ((_, f), x) in fields.iter().zip(vs) {
                    self.write(out, *f, x)?;
                }
            }
            (Node::Enum { name, symbols }, Value::Enum(i)) => {
                if *i as usize >= symbols.len() {
                    return err(format!("enum {name}: index {i} out of range"));
                }
                put_long(out, *i as i64)
            }
            (Node::Array(items), Value::Array(xs)) => {
                if !xs.is_empty() {
                    put_long(out, xs.len() as i64);
                    for x in xs {
                        self.write(out, *items, x)?;
                    }
                }
                out.push(0);
            }
            (Node::Map(values), Value::Map(xs)) => {
                if !xs.is_empty() {
                    put_long(out, xs.len() as i64);
                    for (k, x) in xs {
                        put_bytes(out, k.as_bytes());
                        self.write(out, *values, x)?;
                    }
                }
                out.push(0);
            }
            (Node::Union(branches), Value::Union(i, x)) => {
                let b = *branches.get(*i as usize).ok_or_else(|| AvroError(format!("union branch {i} out of range")))?;
                put_long(out, *i as i64);
                self.write(out, b, x)?;
            }
            (Node::Fixed { name, size }, Value::Fixed(b)) => {
                if b.len() != *size {
                    return err(format!("fixed {name}: {} byte(s), not {size}", b.len()));
                }
                out.extend_from_slice(b)
            }
            (node, value) => return err(format!("value {value:?} does not fit {node:?}")),
        }
        Ok(())
    }
}

/// Items of one array block at most when they take no byte (nulls): a count beyond is refused, not allocated.
const MAX_ITEMS: u64 = 1 << 20;

pub fn put_long(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_long(out, b.len() as i64);
    out.extend_from_slice(b);
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn left(&self) -> usize {
        self.data.len() - self.pos
    }

    fn byte(&mut self) -> Result<u8, AvroError> {
        let b = *self.data.get(self.pos).ok_or_else(|| AvroError("truncated record".into()))?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], AvroError> {
        if self.data.len() - self.pos < n {
            return err("truncated record");
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn long(&mut self) -> Result<i64, AvroError> {
        let mut z: u64 = 0;
        let mut shift = 0;
        loop {
            let b = self.byte()?;
            if shift == 63 && b > 1 {
                return err("varint too long");
            }
            z |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 63 {
                return err("varint too long");
            }
        }
        Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    fn sized(&mut self) -> Result<&'a [u8], AvroError> {
        let n = self.long()?;
        if n < 0 {
            return err(format!("negative length {n}"));
        }
        self.take(n as usize)
    }

    /// The item count of the next array or map block (a negative count is followed by the block's size).
    fn block_count(&mut self) -> Result<u64, AvroError> {
        let n = self.long()?;
        if n < 0 {
            self.long()?;
            return Ok(n.unsigned_abs());
        }
        Ok(n as u64)
    }
}

struct Parser {
    nodes: Vec<Node>,
    named: HashMap<String, usize>,
    logical: HashMap<usize, String>,
}

fn fullname(name: &str, namespace: &str) -> String {
    if name.contains('.') || namespace.is_empty() {
        name.to_string()
    } else {
        format!("{namespace}.{name}")
    }
}

impl Parser {
    fn push(&mut self, n: Node) -> usize {
        self.nodes.push(n);
        self.nodes.len() - 1
    }

    fn primitive(name: &str) -> Option<Node> {
        Some(match name {
            "null" => Node::Null,
            "boolean" => Node::Boolean,
            "int" => Node::Int,
            "long" => Node::Long,
            "float" => Node::Float,
            "double" => Node::Double,
            "bytes" => Node::Bytes,
            "string" => Node::String,
            _ => return None,
        })
    }

    fn node(&mut self, j: &Json, ns: &str) -> Result<usize, AvroError> {
        match j {
            Json::String(name) => {
                if let Some(n) = Self::primitive(name) {
                    return Ok(self.push(n));
                }
                let full = fullname(name, ns);
                self.named
                    .get(&full)
                    .or_else(|| self.named.get(name))
                    .copied()
                    .ok_or_else(|| AvroError(format!("unknown type {full}")))
            }
            Json::Array(branches) => {
                let at = self.push(Node::Union(Vec::new()));
                let mut bs = Vec::with_capacity(branches.len());
                for b in branches {
                    bs.push(self.node(b, ns)?);
                }
                self.nodes[at] = Node::Union(bs);
                Ok(at)
            }
            Json::Object(o) => {
                let t = o.get("type").ok_or_else(|| AvroError("a schema object without type".into()))?;
                let t = match t {
                    Json::String(s) => s.as_str(),
                    other => return self.node(other, ns), // {"type": {...}} or {"type": [...]}
                };
                let name = o.get("name").and_then(Json::as_str);
                let own_ns = o.get("namespace").and_then(Json::as_str).unwrap_or(ns);
                match t {
                    "record" | "error" => {
                        let name = name.ok_or_else(|| AvroError("record without name".into()))?;
                        let full = fullname(name, own_ns);
                        let inner_ns = full.rsplit_once('.').map(|(a, _)| a.to_string()).unwrap_or_default();
                        let at = self.push(Node::Record { name: full.clone(), fields: Vec::new() });
                        self.named.insert(full.clone(), at);
                        let mut fields = Vec::new();
                        for f in o.get("fields").and_then(Json::as_array).ok_or_else(|| AvroError(format!("record {full} without fields")))? {
                            let fname = f.get("name").and_then(Json::as_str).ok_or_else(|| AvroError(format!("record {full}: field without name")))?;
                            let ft = f.get("type").ok_or_else(|| AvroError(format!("{full}.{fname}: no type")))?;
                            fields.push((fname.to_string(), self.node(ft, &inner_ns)?));
                        }
                        self.nodes[at] = Node::Record { name: full, fields };
                        Ok(at)
                    }
                    "enum" => {
                        let name = name.ok_or_else(|| AvroError("enum without name".into()))?;
                        let full = fullname(name, own_ns);
                        let symbols = o
                            .get("symbols")
                            .and_then(Json::as_array)
                            .ok_or_else(|| AvroError(format!("enum {full} without symbols")))?
                            .iter()
                            .map(|s| s.as_str().map(str::to_string).ok_or_else(|| AvroError(format!("enum {full}: a symbol is not a string"))))
                            .collect::<Result<Vec<_>, _>>()?;
                        let at = self.push(Node::Enum { name: full.clone(), symbols });
                        self.named.insert(full, at);
                        Ok(at)
                    }
                    "fixed" => {
                        let name = name.ok_or_else(|| AvroError("fixed without name".into()))?;
                        let full = fullname(name, own_ns);
                        let size = o.get("size").and_then(Json::as_u64).ok_or_else(|| AvroError(format!("fixed {full} without size")))? as usize;
                        let at = self.push(Node::Fixed { name: full.clone(), size });
                        self.named.insert(full, at);
                        Ok(at)
                    }
                    "array" => {
                        let at = self.push(Node::Array(0));
                        let items = self.node(o.get("items").ok_or_else(|| AvroError("array without items".into()))?, ns)?;
                        self.nodes[at] = Node::Array(items);
                        Ok(at)
                    }
                    "map" => {
                        let at = self.push(Node::Map(0));
                        let values = self.node(o.get("values").ok_or_else(|| AvroError("map without values".into()))?, ns)?;
                        self.nodes[at] = Node::Map(values);
                        Ok(at)
                    }
                    other => {
                        let at = self.node(&Json::String(other.to_string()), ns)?;
                        if let Some(lt) = o.get("logicalType").and_then(Json::as_str) {
                            if Self::primitive(other).is_some() {
                                self.logical.insert(at, lt.to_string());
                            }
                        }
                        Ok(at)
                    }
                }
            }
            other => err(format!("not a schema: {other}")),
        }
    }
}
