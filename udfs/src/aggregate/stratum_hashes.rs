//! `stratum_hashes(key, stratum [, seed])`: each stratum's key hashes,
//! sorted — the statistic behind exact stratified splits and samples.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, ListArray, StringArray, StructArray, UInt64Array,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, UInt64Type};
use datafusion::common::{Result, ScalarValue, internal_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, Signature, Volatility,
};
use datafusion::physical_expr::expressions::Literal;
use datafusion::physical_expr_common::physical_expr::fmt_sql;

use super::coerce_text_or_integer;
use super::state::{list_field, list_scalar};
use crate::kernel::split::{Strata, StratumHashes};

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::DOC_SECTION,
        "Each stratum's key hashes, sorted: the statistic of stratified_split, \
         stratified_sample, undersample and oversample, which rank a stratum's rows by it. A \
         key's hash is FarmHash Fingerprint64 of its text (as hash_bucket); with a seed, \
         MurmurHash3's fmix64 of that hash XOR fmix64(seed). Strata are compared by their \
         text and listed in byte order. Rows whose key or stratum is NULL are skipped.",
        "stratum_hashes(key, stratum [, seed])",
    )
    .with_argument("key", "A string or integer expression identifying the row.")
    .with_argument("stratum", "A string or integer expression: the row's stratum.")
    .with_argument("seed", "Optional integer literal salting the hashes.")
    .with_sql_example(
        "```sql
> SELECT stratum_hashes(k, s) AS h FROM (VALUES ('a', 'x'), ('b', 'x'), ('c', 'y')) t(k, s);
+--------------------------------------------------------------------------------------------------------------------+
| h                                                                                                                  |
+--------------------------------------------------------------------------------------------------------------------+
| [{stratum: x, hashes: [11795596070477164822, 12917804110809363939]}, {stratum: y, hashes: [11430444447143000872]}] |
+--------------------------------------------------------------------------------------------------------------------+
```",
    )
    .build()
});

/// `stratum_hashes(key, stratum [, seed])` →
/// `List<Struct{stratum: Utf8, hashes: List<UInt64>}>`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct StratumHashesUdaf {
    signature: Signature,
}

impl Default for StratumHashesUdaf {
    fn default() -> Self {
        Self::new()
    }
}

impl StratumHashesUdaf {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

const NAME: &str = "stratum_hashes";

fn entry_fields() -> Fields {
    Fields::from(vec![
        Field::new("stratum", DataType::Utf8, false),
        Field::new("hashes", DataType::new_list(DataType::UInt64, true), false),
    ])
}

impl AggregateUDFImpl for StratumHashesUdaf {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let [key, stratum, rest @ ..] = arg_types else {
            return plan_err!(
                "{NAME} takes (key, stratum [, seed]), got {} argument(s)",
                arg_types.len()
            );
        };
        // Unsigned 64-bit values keep their type (their text is hashed).
        let keep_u64 = |argument: &str, t: &DataType| match t {
            DataType::UInt64 => Ok(DataType::UInt64),
            DataType::Boolean if argument == "stratum" => Ok(DataType::Utf8),
            t => coerce_text_or_integer(NAME, argument, t),
        };
        let mut out = vec![keep_u64("key", key)?, keep_u64("stratum", stratum)?];
        match rest {
            [] => {}
            [seed] if seed.is_integer() => out.push(seed.clone()),
            [seed] => return plan_err!("{NAME}: seed must be an integer literal, got type {seed}"),
            _ => {
                return plan_err!(
                    "{NAME} takes (key, stratum [, seed]), got {} argument(s)",
                    arg_types.len()
                );
            }
        }
        Ok(out)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::new_list(DataType::Struct(entry_fields()), true))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            list_field(args.name, "strata", DataType::Utf8),
            list_field(args.name, "lengths", DataType::UInt64),
            list_field(args.name, "hashes", DataType::UInt64),
        ])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let seed = match args.exprs.get(2) {
            None => None,
            Some(expr) => Some(seed_literal(expr.as_ref())?),
        };
        Ok(Box::new(StratumHashesAccumulator {
            hashes: StratumHashes::default(),
            seed,
        }))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

/// The seed: any integer literal, negative ones read as their two's
/// complement.
fn seed_literal(expr: &dyn datafusion::physical_expr::PhysicalExpr) -> Result<u64> {
    let Some(literal) = expr.downcast_ref::<Literal>() else {
        return plan_err!(
            "{NAME}: seed must be an integer literal, got the expression {}",
            fmt_sql(expr)
        );
    };
    crate::scalar::stratified::seed(NAME, Some(literal.value()))
}

#[derive(Debug)]
struct StratumHashesAccumulator {
    hashes: StratumHashes,
    seed: Option<u64>,
}

impl Accumulator for StratumHashesAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let hashes = crate::keys::hashes(NAME, &values[0], self.seed)?;
        let state = &mut self.hashes;
        crate::keys::each_text(NAME, &values[1], |i, stratum| {
            if let (Some(stratum), Some(hash)) = (stratum, hashes[i]) {
                state.push(stratum, hash);
            }
        })
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [strata, lengths, hashes] = states else {
            return internal_err!("{NAME}: expected 3 state columns, got {}", states.len());
        };
        let (strata, lengths, hashes) = (
            strata.as_list::<i32>(),
            lengths.as_list::<i32>(),
            hashes.as_list::<i32>(),
        );
        for row in 0..strata.len() {
            if strata.is_null(row) {
                continue;
            }
            let names = strata.value(row);
            let names = names.as_string::<i32>();
            let lengths = lengths.value(row);
            let lengths = lengths.as_primitive::<UInt64Type>();
            let values = hashes.value(row);
            let values = values.as_primitive::<UInt64Type>().values();
            let mut start = 0usize;
            for (name, length) in names.iter().zip(lengths.values()) {
                let end = start + *length as usize;
                if end > values.len() {
                    return internal_err!("{NAME}: state lengths exceed its hashes");
                }
                self.hashes
                    .extend(name.unwrap_or_default(), &values[start..end]);
                start = end;
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let names: StringArray = self.hashes.iter().map(|(s, _)| Some(s)).collect();
        let lengths: UInt64Array = self.hashes.iter().map(|(_, h)| h.len() as u64).collect();
        let hashes: UInt64Array = self
            .hashes
            .iter()
            .flat_map(|(_, h)| h.iter().copied())
            .collect();
        Ok(vec![
            list_scalar(Arc::new(names)),
            list_scalar(Arc::new(lengths)),
            list_scalar(Arc::new(hashes)),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let strata = std::mem::take(&mut self.hashes).into_sorted();
        Ok(list_scalar(Arc::new(strata_array(&strata)?)))
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.hashes.size()
    }
}

/// The result rows: one struct per stratum.
fn strata_array(strata: &Strata) -> Result<StructArray> {
    let names: StringArray = strata
        .strata
        .iter()
        .map(|(s, _)| Some(s.as_str()))
        .collect();
    let offsets = OffsetBuffer::from_lengths(strata.strata.iter().map(|(_, h)| h.len()));
    let values: UInt64Array = strata
        .strata
        .iter()
        .flat_map(|(_, h)| h.iter().copied())
        .collect();
    let item = Arc::new(Field::new_list_field(DataType::UInt64, true));
    let lists = ListArray::try_new(item, offsets, Arc::new(values), None)?;
    Ok(StructArray::try_new(
        entry_fields(),
        vec![Arc::new(names), Arc::new(lists)],
        None,
    )?)
}

/// Reads the result of `stratum_hashes` (one row of its list) back.
pub fn decode_strata(value: &ArrayRef) -> Result<Strata> {
    let entries = value.as_struct();
    let (Some(names), Some(lists)) = (
        entries.column_by_name("stratum"),
        entries.column_by_name("hashes"),
    ) else {
        return internal_err!("{NAME}: result has no 'stratum' or 'hashes' field");
    };
    let names = names.as_string::<i32>();
    let lists = lists.as_list::<i32>();
    let mut strata = Vec::with_capacity(names.len());
    for i in 0..names.len() {
        let hashes = lists.value(i);
        strata.push((
            names.value(i).to_string(),
            hashes.as_primitive::<UInt64Type>().values().to_vec(),
        ));
    }
    Ok(Strata { strata })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::test_util::{merged_through_state, run_sql, run_sql_err};
    use datafusion::arrow::array::{Int64Array, StringViewArray};

    fn acc(seed: Option<u64>) -> StratumHashesAccumulator {
        StratumHashesAccumulator {
            hashes: StratumHashes::default(),
            seed,
        }
    }

    // Fingerprint64 from PyPI pyfarmhash 0.5.1: a 12917804110809363939,
    // b 11795596070477164822, c 11430444447143000872, d 4470636696479570465.
    #[test]
    fn merged_states_give_sorted_strata() {
        let mut a = acc(None);
        a.update_batch(&[
            Arc::new(StringArray::from(vec![Some("a"), None, Some("c")])) as ArrayRef,
            Arc::new(StringViewArray::from(vec![Some("x"), Some("x"), Some("y")])),
        ])
        .unwrap();
        let mut b = acc(None);
        b.update_batch(&[
            Arc::new(StringArray::from(vec![Some("b"), Some("d"), Some("e")])) as ArrayRef,
            Arc::new(StringArray::from(vec![Some("x"), Some("y"), None])),
        ])
        .unwrap();
        let mut merged = merged_through_state(acc(None), [&mut b, &mut a]);
        assert_eq!(
            merged.evaluate().unwrap().to_string(),
            "[{stratum: x, hashes: [11795596070477164822, 12917804110809363939]}, \
             {stratum: y, hashes: [4470636696479570465, 11430444447143000872]}]"
        );
    }

    #[test]
    fn integer_keys_and_strata_hash_their_text_and_seeds_salt() {
        let mut a = acc(Some(7));
        a.update_batch(&[
            Arc::new(StringArray::from(vec!["a", "b"])) as ArrayRef,
            Arc::new(Int64Array::from(vec![-1, -1])),
        ])
        .unwrap();
        // fmix64(h ^ fmix64(7)), from a Python transcription of MurmurHash3's
        // finalizer over the pyfarmhash hashes above.
        assert_eq!(
            a.evaluate().unwrap().to_string(),
            "[{stratum: -1, hashes: [16765542596227170030, 17604354751963587055]}]"
        );
    }

    #[tokio::test]
    async fn sql_groups_and_errors() {
        let rows = run_sql(
            "SELECT g, stratum_hashes(s, i) FROM parts WHERE s IN ('a', 'b') GROUP BY g ORDER BY g",
        )
        .await;
        // Group a: keys b, a in stratum 5 and a, b in stratum 3; the NULL
        // stratum is skipped.
        assert_eq!(
            rows,
            [
                "a|[{stratum: 3, hashes: [11795596070477164822, 12917804110809363939]}, \
              {stratum: 5, hashes: [11795596070477164822, 12917804110809363939]}]"
            ]
        );
        let err = run_sql_err("SELECT stratum_hashes(s, i, i) FROM parts").await;
        assert!(
            err.contains("stratum_hashes: seed must be an integer literal, got the expression"),
            "{err}"
        );
        let err = run_sql_err("SELECT stratum_hashes(x, s) FROM parts").await;
        assert!(
            err.contains("stratum_hashes: key must be a string or an integer, got Float64"),
            "{err}"
        );
    }
}
