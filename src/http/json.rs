//! Request bodies as JSON, strictly: a struct is read only from a JSON object. serde's derived
//! `Deserialize` also accepts an array of the fields in order (`["a@b.c", "pw"]` as login
//! credentials), which no client of this API means and which the OpenAPI document does not
//! describe; [`from_slice`] wraps the JSON deserializer so that, at every depth, a struct asks
//! for a map. A body that is not a JSON object at all is a validation failure (422); a syntax
//! error or a mismatched field type is a bad request (400), as before.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor};

/// What went wrong reading a body.
#[derive(Debug)]
pub enum BodyError {
    /// The body is JSON but not an object.
    NotAnObject,
    /// Not JSON, or a field of the wrong shape.
    Invalid(serde_json::Error),
}

/// Deserializes `T` from `bytes`, refusing sequences wherever a struct is expected. A refused
/// body that is well-formed JSON but not an object is [`BodyError::NotAnObject`].
pub fn from_slice<'de, T: de::Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, BodyError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let read = T::deserialize(Strict(&mut de)).and_then(|v| de.end().map(|()| v));
    read.map_err(|e| {
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        if first.is_some_and(|b| *b != b'{') && serde_json::from_slice::<de::IgnoredAny>(bytes).is_ok() {
            BodyError::NotAnObject
        } else {
            BodyError::Invalid(e)
        }
    })
}

/// A deserializer whose structs come only from maps; everything else passes through, wrapped
/// again one level down.
struct Strict<D>(D);

/// Passes a visitor's callbacks through, wrapping the nested accessors in `Strict`.
struct StrictVisitor<V>(V);

/// Wraps a seed so that what it deserializes is `Strict` too.
struct StrictSeed<S>(S);

macro_rules! forward {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            self.0.$method(StrictVisitor(visitor))
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Strict<D> {
    type Error = D::Error;

    forward! {
        deserialize_any deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64 deserialize_char deserialize_str deserialize_string
        deserialize_bytes deserialize_byte_buf deserialize_option deserialize_unit deserialize_seq
        deserialize_map deserialize_identifier deserialize_ignored_any
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, name: &'static str, v: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_unit_struct(name, StrictVisitor(v))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, name: &'static str, v: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_newtype_struct(name, StrictVisitor(v))
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, v: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple(len, StrictVisitor(v))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        v: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple_struct(name, len, StrictVisitor(v))
    }

    /// The point of the wrapper: a struct is a map, never a sequence.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(StrictVisitor(v))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_enum(name, variants, StrictVisitor(v))
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

macro_rules! visit {
    ($($method:ident: $ty:ty),*) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<Self::Value, E> {
            self.0.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for StrictVisitor<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.0.expecting(f)
    }

    visit! {
        visit_bool: bool, visit_i8: i8, visit_i16: i16, visit_i32: i32, visit_i64: i64, visit_i128: i128,
        visit_u8: u8, visit_u16: u16, visit_u32: u32, visit_u64: u64, visit_u128: u128, visit_f32: f32,
        visit_char: char, visit_str: &str, visit_borrowed_str: &'de str, visit_string: String,
        visit_bytes: &[u8], visit_borrowed_bytes: &'de [u8], visit_byte_buf: Vec<u8>
    }

    /// JSON Schema counts `2.0` as the integer 2, and so does the API: a whole number written
    /// with a fraction is read as an integer (a float field still takes it as a float).
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        // -2^63 and 2^63 are exact in f64; the range check keeps the cast lossless.
        if v.fract() == 0.0 && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&v) {
            self.0.visit_i64(v as i64)
        } else {
            self.0.visit_f64(v)
        }
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.0.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.0.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.visit_some(Strict(d))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.0.visit_newtype_struct(Strict(d))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.0.visit_seq(Strict(seq))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.0.visit_map(Strict(map))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        self.0.visit_enum(Strict(data))
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for StrictSeed<S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.0.deserialize(Strict(d))
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Strict<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, A::Error> {
        self.0.next_element_seed(StrictSeed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Strict<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        self.0.next_key_seed(StrictSeed(seed))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.0.next_value_seed(StrictSeed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for Strict<A> {
    type Error = A::Error;
    type Variant = Strict<A::Variant>;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self::Variant), A::Error> {
        self.0.variant_seed(StrictSeed(seed)).map(|(v, rest)| (v, Strict(rest)))
    }
}

/// Deserializes a struct variant's content as a map.
struct MapOf<V>(V);

impl<'de, V: Visitor<'de>> DeserializeSeed<'de> for MapOf<V> {
    type Value = V::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        d.deserialize_map(StrictVisitor(self.0))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Strict<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.0.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.0.newtype_variant_seed(StrictSeed(seed))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, v: V) -> Result<V::Value, A::Error> {
        self.0.tuple_variant(len, StrictVisitor(v))
    }

    fn struct_variant<V: Visitor<'de>>(self, _fields: &'static [&'static str], v: V) -> Result<V::Value, A::Error> {
        self.0.newtype_variant_seed(MapOf(v))
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize, Debug, PartialEq)]
    struct Row {
        label: String,
        seats: u32,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct Body {
        name: Option<String>,
        rows: Vec<Row>,
        inner: Option<Row>,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct Kinds {
        kinds: Vec<Kind>,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Kind {
        Plain,
        Detailed { level: u8 },
    }

    #[test]
    fn objects_deserialize_as_before() {
        let b: Body =
            from_slice(br#" {"name":"x","rows":[{"label":"A","seats":2}],"inner":{"label":"B","seats":1}}"#).unwrap();
        assert_eq!(b.rows, vec![Row { label: "A".into(), seats: 2 }]);
        assert_eq!(b.inner, Some(Row { label: "B".into(), seats: 1 }));
        assert_eq!(from_slice::<Kind>(br#""plain""#).unwrap(), Kind::Plain);
        assert_eq!(
            from_slice::<Kinds>(br#"{"kinds":["plain",{"detailed":{"level":3}}]}"#).unwrap().kinds,
            vec![Kind::Plain, Kind::Detailed { level: 3 }]
        );
    }

    #[test]
    fn whole_numbers_with_a_fraction_are_integers() {
        assert_eq!(from_slice::<Row>(br#"{"label":"A","seats":208.0}"#).unwrap().seats, 208);
        assert!(matches!(from_slice::<Row>(br#"{"label":"A","seats":2.5}"#), Err(BodyError::Invalid(_))));
        assert!(matches!(from_slice::<Row>(br#"{"label":"A","seats":-1.0}"#), Err(BodyError::Invalid(_))));
        assert_eq!(from_slice::<f64>(b"2.0").unwrap(), 2.0);
    }

    #[test]
    fn arrays_where_objects_belong_are_refused_at_any_depth() {
        assert!(matches!(from_slice::<Row>(br#"["A", 2]"#), Err(BodyError::NotAnObject)));
        assert!(matches!(from_slice::<Row>(b"\"A\""), Err(BodyError::NotAnObject)));
        assert!(matches!(from_slice::<Body>(br#"{"rows":[["A",2]]}"#), Err(BodyError::Invalid(_))));
        assert!(matches!(from_slice::<Body>(br#"{"rows":[],"inner":["A",2]}"#), Err(BodyError::Invalid(_))));
        assert!(matches!(from_slice::<Kinds>(br#"{"kinds":[{"detailed":[3]}]}"#), Err(BodyError::Invalid(_))));
        // Broken JSON is a syntax error whatever it starts with.
        assert!(matches!(from_slice::<Row>(b"[1,"), Err(BodyError::Invalid(_))));
    }
}
