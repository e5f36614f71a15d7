//! One numeric field of a serializable struct, read by its name without
//! serializing the rest: what `SummaryRow::metric` used to get by turning
//! the whole row into a `serde_json::Value` (80 map entries) for every
//! metric asked, which made a run's stats file and report the biggest part
//! of a short run's start-up cost. Same answers as `to_value(..)[name].as_f64()`:
//! a number (integer or float) as `f64`, `None` for a missing field, an empty
//! option, or anything that is not a number.

use serde::ser::{self, Impossible, Serialize, SerializeStruct, Serializer};

/// The value of field `name` of `value` as a number, if it is one.
pub fn number<T: Serialize>(value: &T, name: &str) -> Option<f64> {
    value.serialize(Fields { name }).ok().flatten()
}

/// Not a struct, or a field that is not a number: nothing to read.
#[derive(Debug)]
struct NotANumber;

impl std::fmt::Display for NotANumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a number")
    }
}

impl std::error::Error for NotANumber {}

impl ser::Error for NotANumber {
    fn custom<M: std::fmt::Display>(_: M) -> Self {
        NotANumber
    }
}

/// Walks a struct's fields, serializing only the one named.
struct Fields<'a> {
    name: &'a str,
}

/// The field found so far.
struct Picking<'a> {
    name: &'a str,
    found: Option<f64>,
}

impl SerializeStruct for Picking<'_> {
    type Ok = Option<f64>;
    type Error = NotANumber;

    fn serialize_field<V: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &V,
    ) -> Result<(), NotANumber> {
        if key == self.name {
            self.found = value.serialize(Number).unwrap_or(None);
        }
        Ok(())
    }

    fn end(self) -> Result<Option<f64>, NotANumber> {
        Ok(self.found)
    }
}

/// Every serializer method a struct does not call is refused.
macro_rules! refuse {
    ($($name:ident($($arg:ty),*);)*) => {
        $(fn $name(self, $(_: $arg),*) -> Result<Self::Ok, NotANumber> {
            Err(NotANumber)
        })*
    };
}

/// The methods that start a compound value, refused.
macro_rules! refuse_compounds {
    () => {
        fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, NotANumber> {
            Err(NotANumber)
        }
        fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, NotANumber> {
            Err(NotANumber)
        }
        fn serialize_tuple_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleStruct, NotANumber> {
            Err(NotANumber)
        }
        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleVariant, NotANumber> {
            Err(NotANumber)
        }
        fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, NotANumber> {
            Err(NotANumber)
        }
        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStructVariant, NotANumber> {
            Err(NotANumber)
        }
    };
}

impl<'a> Serializer for Fields<'a> {
    type Ok = Option<f64>;
    type Error = NotANumber;
    type SerializeSeq = Impossible<Option<f64>, NotANumber>;
    type SerializeTuple = Impossible<Option<f64>, NotANumber>;
    type SerializeTupleStruct = Impossible<Option<f64>, NotANumber>;
    type SerializeTupleVariant = Impossible<Option<f64>, NotANumber>;
    type SerializeMap = Impossible<Option<f64>, NotANumber>;
    type SerializeStruct = Picking<'a>;
    type SerializeStructVariant = Impossible<Option<f64>, NotANumber>;

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Picking<'a>, NotANumber> {
        Ok(Picking {
            name: self.name,
            found: None,
        })
    }

    refuse! {
        serialize_bool(bool); serialize_i8(i8); serialize_i16(i16); serialize_i32(i32);
        serialize_i64(i64); serialize_u8(u8); serialize_u16(u16); serialize_u32(u32);
        serialize_u64(u64); serialize_f32(f32); serialize_f64(f64); serialize_char(char);
        serialize_str(&str); serialize_bytes(&[u8]); serialize_none(); serialize_unit();
        serialize_unit_struct(&'static str);
        serialize_unit_variant(&'static str, u32, &'static str);
    }
    refuse_compounds!();

    fn serialize_some<V: ?Sized + Serialize>(self, _: &V) -> Result<Option<f64>, NotANumber> {
        Err(NotANumber)
    }
    fn serialize_newtype_struct<V: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: &V,
    ) -> Result<Option<f64>, NotANumber> {
        Err(NotANumber)
    }
    fn serialize_newtype_variant<V: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &V,
    ) -> Result<Option<f64>, NotANumber> {
        Err(NotANumber)
    }
}

/// One field's value: a number, an option of one, or nothing readable.
struct Number;

impl Serializer for Number {
    type Ok = Option<f64>;
    type Error = NotANumber;
    type SerializeSeq = Impossible<Option<f64>, NotANumber>;
    type SerializeTuple = Impossible<Option<f64>, NotANumber>;
    type SerializeTupleStruct = Impossible<Option<f64>, NotANumber>;
    type SerializeTupleVariant = Impossible<Option<f64>, NotANumber>;
    type SerializeMap = Impossible<Option<f64>, NotANumber>;
    type SerializeStruct = Impossible<Option<f64>, NotANumber>;
    type SerializeStructVariant = Impossible<Option<f64>, NotANumber>;

    fn serialize_i8(self, v: i8) -> Result<Option<f64>, NotANumber> {
        Ok(Some(f64::from(v)))
    }
    fn serialize_i16(self, v: i16) -> Result<Option<f64>, NotANumber> {
        Ok(Some(f64::from(v)))
    }
    fn serialize_i32(self, v: i32) -> Result<Option<f64>, NotANumber> {
        Ok(Some(f64::from(v)))
    }
    fn serialize_i64(self, v: i64) -> Result<Option<f64>, NotANumber> {
        Ok(Some(v as f64))
    }
    fn serialize_u8(self, v: u8) -> Result<Option<f64>, NotANumber> {
        Ok(Some(f64::from(v)))
    }
    fn serialize_u16(self, v: u16) -> Result<Option<f64>, NotANumber> {
        Ok(Some(f64::from(v)))
    }
    fn serialize_u32(self, v: u32) -> Result<Option<f64>, NotANumber> {
        Ok(Some(f64::from(v)))
    }
    fn serialize_u64(self, v: u64) -> Result<Option<f64>, NotANumber> {
        Ok(Some(v as f64))
    }
    fn serialize_f32(self, v: f32) -> Result<Option<f64>, NotANumber> {
        // serde_json keeps an f32 as its f64 widening; NaN and infinities
        // become null there.
        Ok(Some(f64::from(v)).filter(|v| v.is_finite()))
    }
    fn serialize_f64(self, v: f64) -> Result<Option<f64>, NotANumber> {
        Ok(Some(v).filter(|v| v.is_finite()))
    }
    fn serialize_none(self) -> Result<Option<f64>, NotANumber> {
        Ok(None)
    }
    fn serialize_some<V: ?Sized + Serialize>(self, v: &V) -> Result<Option<f64>, NotANumber> {
        v.serialize(Number)
    }
    fn serialize_newtype_struct<V: ?Sized + Serialize>(
        self,
        _: &'static str,
        v: &V,
    ) -> Result<Option<f64>, NotANumber> {
        v.serialize(Number)
    }

    refuse! {
        serialize_bool(bool); serialize_char(char); serialize_str(&str);
        serialize_bytes(&[u8]); serialize_unit();
        serialize_unit_struct(&'static str);
        serialize_unit_variant(&'static str, u32, &'static str);
    }
    refuse_compounds!();

    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, NotANumber> {
        Err(NotANumber)
    }
    fn serialize_newtype_variant<V: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &V,
    ) -> Result<Option<f64>, NotANumber> {
        Err(NotANumber)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::SummaryRow;

    /// What `metric` answered before: the whole row as a JSON value.
    fn through_json<T: Serialize>(v: &T, name: &str) -> Option<f64> {
        serde_json::to_value(v).ok()?.get(name)?.as_f64()
    }

    #[test]
    fn every_column_reads_as_through_json() {
        let mut row = SummaryRow {
            scenario: "s".into(),
            cache: Some(true),
            duration_s: Some(1.5),
            sent: Some(7),
            latency_p99_ms: Some(f64::NAN),
            ..SummaryRow::default()
        };
        row.interrupted = true;
        let names = crate::report::atomic::header_of::<SummaryRow>().unwrap();
        for row in [SummaryRow::default(), row] {
            for name in names.iter().chain(["no_such_column"]) {
                assert_eq!(number(&row, name), through_json(&row, name), "{name}");
            }
        }
        assert_eq!(number(&7u64, "x"), None, "not a struct");
    }
}
