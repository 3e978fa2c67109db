//! `vocabulary(x [, top_k [, min_frequency]])`: the distinct values of a
//! column with their counts, most frequent first.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{ArrayRef, Int64Array, StructArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::{Result, ScalarValue, internal_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, Signature, Volatility,
};

use super::counts::{CountKey, CountsState};
use super::state::{count_i64, list_scalar, positive_literal};
use super::{coerce_integer_literal, coerce_text_or_integer};

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::DOC_SECTION,
        "The vocabulary of a string or integer column: each distinct value with its count, \
         most frequent first, ties by value ascending (byte order for strings, numeric order \
         for integers). Only values seen at least `min_frequency` times are kept, and at most \
         `top_k` of them. NULLs are skipped. Returns a list of structs {value, count} (`value` \
         is a string for string input and a BIGINT for integer input); the list is empty, \
         not NULL, when there are no values.",
        "vocabulary(x [, top_k [, min_frequency]])",
    )
    .with_argument(
        "x",
        "A string or integer expression (integers are computed as BIGINT).",
    )
    .with_argument(
        "top_k",
        "Optional: keep at most this many values, a positive integer literal (default: all).",
    )
    .with_argument(
        "min_frequency",
        "Optional: keep only values seen at least this many times, a positive integer literal \
         (default 1).",
    )
    .with_sql_example(
        "```sql
> SELECT vocabulary(v) AS all_values, vocabulary(v, 2) AS top_2,
         vocabulary(v, 10, 2) AS frequent
  FROM (VALUES ('b'), ('a'), ('c'), ('a'), ('b'), ('d'), ('a'), (NULL)) t(v);
+------------------------------------------------------------------------------------------+----------------------------------------------+----------------------------------------------+
| all_values                                                                               | top_2                                        | frequent                                     |
+------------------------------------------------------------------------------------------+----------------------------------------------+----------------------------------------------+
| [{value: a, count: 3}, {value: b, count: 2}, {value: c, count: 1}, {value: d, count: 1}] | [{value: a, count: 3}, {value: b, count: 2}] | [{value: a, count: 3}, {value: b, count: 2}] |
+------------------------------------------------------------------------------------------+----------------------------------------------+----------------------------------------------+
```",
    )
    .build()
});

/// `vocabulary(x [, top_k [, min_frequency]])` → List<Struct{value, count}>.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Vocabulary {
    signature: Signature,
}

impl Default for Vocabulary {
    fn default() -> Self {
        Self::new()
    }
}

impl Vocabulary {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// The fields of one vocabulary entry.
fn entry_fields(value: DataType) -> Fields {
    Fields::from(vec![
        Field::new("value", value, false),
        Field::new("count", DataType::Int64, false),
    ])
}

/// The type of the values once coerced: strings are returned as Utf8.
fn value_type(x: &DataType) -> Result<DataType> {
    match x {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Ok(DataType::Utf8),
        DataType::Int64 => Ok(DataType::Int64),
        other => internal_err!("vocabulary: unexpected coerced argument type {other}"),
    }
}

impl AggregateUDFImpl for Vocabulary {
    fn name(&self) -> &str {
        "vocabulary"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let (x, literals) = match arg_types {
            [x, rest @ ..] if rest.len() <= 2 => (x, rest),
            _ => {
                return plan_err!(
                    "vocabulary expects 1 to 3 arguments (x [, top_k [, min_frequency]]), got {}",
                    arg_types.len()
                );
            }
        };
        let mut types = vec![coerce_text_or_integer(self.name(), "x", x)?];
        for (t, argument) in literals.iter().zip(["top_k", "min_frequency"]) {
            types.push(coerce_integer_literal(self.name(), argument, t)?);
        }
        Ok(types)
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let entry = entry_fields(value_type(&arg_types[0])?);
        Ok(DataType::new_list(DataType::Struct(entry), true))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(match value_type(args.input_fields[0].data_type())? {
            DataType::Int64 => CountsState::<i64>::fields(args.name),
            _ => CountsState::<String>::fields(args.name),
        })
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let top_k = positive_literal(&args, self.name(), 1, "top_k")?;
        let min_frequency = positive_literal(&args, self.name(), 2, "min_frequency")?.unwrap_or(1);
        Ok(match value_type(args.expr_fields[0].data_type())? {
            DataType::Int64 => Box::new(VocabularyAccumulator::<i64>::new(top_k, min_frequency)),
            _ => Box::new(VocabularyAccumulator::<String>::new(top_k, min_frequency)),
        })
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

/// Counts every value; the cuts apply only when evaluating, so partial
/// states stay complete.
#[derive(Debug)]
struct VocabularyAccumulator<K: CountKey> {
    counts: CountsState<K>,
    top_k: Option<u64>,
    min_frequency: u64,
}

impl<K: CountKey> VocabularyAccumulator<K> {
    fn new(top_k: Option<u64>, min_frequency: u64) -> Self {
        Self {
            counts: CountsState::default(),
            top_k,
            min_frequency,
        }
    }
}

impl<K: CountKey> Accumulator for VocabularyAccumulator<K> {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.counts.update_batch(&values[0])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.counts.merge_batch(states)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(self.counts.state())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let vocabulary = self
            .counts
            .counts
            .vocabulary(self.top_k, self.min_frequency);
        let values = K::to_array(vocabulary.iter().map(|(v, _)| v));
        let counts: Int64Array = vocabulary.iter().map(|&(_, n)| count_i64(n)).collect();
        let entries = StructArray::try_new(
            entry_fields(K::DATA_TYPE),
            vec![values, Arc::new(counts)],
            None,
        )?;
        Ok(list_scalar(Arc::new(entries)))
    }

    fn size(&self) -> usize {
        size_of_val(self) - size_of_val(&self.counts) + self.counts.size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::test_util::{merged_through_state, run_sql, run_sql_err};
    use datafusion::arrow::array::{Int64Array, StringArray, StringViewArray};

    fn strings(values: &[Option<&str>], top_k: Option<u64>, min_frequency: u64) -> String {
        let mut acc = VocabularyAccumulator::<String>::new(top_k, min_frequency);
        acc.update_batch(&[Arc::new(StringArray::from(values.to_vec())) as ArrayRef])
            .unwrap();
        acc.evaluate().unwrap().to_string()
    }

    const ISSUE: [Option<&str>; 8] = [
        Some("b"),
        Some("a"),
        Some("c"),
        None,
        Some("a"),
        Some("b"),
        Some("d"),
        Some("a"),
    ];

    #[test]
    fn issue_examples() {
        assert_eq!(
            strings(&ISSUE, None, 1),
            "[{value: a, count: 3}, {value: b, count: 2}, {value: c, count: 1}, {value: d, count: 1}]"
        );
        assert_eq!(
            strings(&ISSUE, Some(2), 1),
            "[{value: a, count: 3}, {value: b, count: 2}]"
        );
        assert_eq!(
            strings(&ISSUE, None, 2),
            "[{value: a, count: 3}, {value: b, count: 2}]"
        );
        assert_eq!(strings(&ISSUE, Some(1), 3), "[{value: a, count: 3}]");
        assert_eq!(strings(&ISSUE, None, 4), "[]");
        assert_eq!(strings(&[None, None], None, 1), "[]");
    }

    #[test]
    fn ties_order_by_bytes_and_by_number() {
        // Byte order: "B" (0x42) < "a" (0x61) < "é" (0xC3 0xA9).
        assert_eq!(
            strings(&[Some("é"), Some("a"), Some("B")], None, 1),
            "[{value: B, count: 1}, {value: a, count: 1}, {value: é, count: 1}]"
        );
        let mut acc = VocabularyAccumulator::<i64>::new(None, 1);
        let values = Int64Array::from(vec![Some(10), Some(-3), None, Some(9), Some(10)]);
        acc.update_batch(&[Arc::new(values) as ArrayRef]).unwrap();
        assert_eq!(
            acc.evaluate().unwrap().to_string(),
            "[{value: 10, count: 2}, {value: -3, count: 1}, {value: 9, count: 1}]"
        );
        assert_eq!(acc.counts.counts.skipped.nulls, 1);
    }

    #[test]
    fn merged_states_give_the_same_vocabulary() {
        let mut a = VocabularyAccumulator::<String>::new(Some(3), 1);
        a.update_batch(&[Arc::new(StringViewArray::from(ISSUE[..4].to_vec())) as ArrayRef])
            .unwrap();
        let mut b = VocabularyAccumulator::<String>::new(Some(3), 1);
        b.update_batch(&[Arc::new(StringArray::from(ISSUE[4..].to_vec())) as ArrayRef])
            .unwrap();
        let mut empty = VocabularyAccumulator::<String>::new(Some(3), 1);
        let fresh = VocabularyAccumulator::<String>::new(Some(3), 1);
        let mut merged = merged_through_state(fresh, [&mut b, &mut empty, &mut a]);
        assert_eq!(
            merged.evaluate().unwrap().to_string(),
            "[{value: a, count: 3}, {value: b, count: 2}, {value: c, count: 1}]"
        );
        assert_eq!(merged.counts.counts.skipped.nulls, 1);
        let mut nothing =
            merged_through_state(VocabularyAccumulator::<String>::new(None, 1), [&mut empty]);
        assert_eq!(nothing.evaluate().unwrap().to_string(), "[]");
        assert!(merged.size() > empty.size());
    }

    #[tokio::test]
    async fn sql_over_values_groups_empty_and_one_row() {
        let issue = "FROM (VALUES ('b'), ('a'), ('c'), ('a'), ('b'), ('d'), ('a')) t(v)";
        let rows = run_sql(&format!(
            "SELECT vocabulary(v), vocabulary(v, 2), vocabulary(v, 10, 2) {issue}"
        ))
        .await;
        assert_eq!(
            rows,
            [
                "[{value: a, count: 3}, {value: b, count: 2}, {value: c, count: 1}, \
              {value: d, count: 1}]|\
              [{value: a, count: 3}, {value: b, count: 2}]|\
              [{value: a, count: 3}, {value: b, count: 2}]"
            ]
        );
        for layout in ["Dictionary(Int32, Utf8)", "Utf8View", "LargeUtf8"] {
            let rows = run_sql(&format!(
                "SELECT vocabulary(arrow_cast(v, '{layout}'), 1) {issue}"
            ))
            .await;
            assert_eq!(rows, ["[{value: a, count: 3}]"], "{layout}");
        }
        // a: b, a, a, b, a (s) and 5, 3, NULL, 3, 5 (i); b: c, NULL, d and 5, 7, 7.
        let rows =
            run_sql("SELECT g, vocabulary(s), vocabulary(i) FROM parts GROUP BY g ORDER BY g")
                .await;
        assert_eq!(
            rows,
            [
                "a|[{value: a, count: 3}, {value: b, count: 2}]|\
                 [{value: 3, count: 2}, {value: 5, count: 2}]",
                "b|[{value: c, count: 1}, {value: d, count: 1}]|\
                 [{value: 7, count: 2}, {value: 5, count: 1}]",
            ]
        );
        let rows = run_sql("SELECT vocabulary(s), vocabulary(i, 3) FROM parts WHERE false").await;
        assert_eq!(rows, ["[]|[]"]);
        let rows = run_sql("SELECT vocabulary(s) FROM parts WHERE x = 10").await;
        assert_eq!(rows, ["[]"]);
        let rows = run_sql("SELECT vocabulary(i, 1, 1) FROM parts WHERE x = 10").await;
        assert_eq!(rows, ["[{value: 7, count: 1}]"]);
        let rows = run_sql("SELECT arrow_typeof(vocabulary(i)) FROM parts").await;
        assert!(rows[0].contains("Int64"), "{rows:?}");
    }

    #[tokio::test]
    async fn sql_rejects_bad_types_and_literals() {
        for (sql, message) in [
            (
                "vocabulary(x)",
                "vocabulary: x must be a string or an integer, got Float64",
            ),
            (
                "vocabulary(s, -1)",
                "vocabulary: top_k must be a positive integer literal, got -1",
            ),
            (
                "vocabulary(s, 0)",
                "vocabulary: top_k must be a positive integer literal, got 0",
            ),
            (
                "vocabulary(s, NULL)",
                "vocabulary: top_k must be a positive integer literal, got NULL",
            ),
            (
                "vocabulary(s, 1.5)",
                "vocabulary: top_k must be a positive integer literal, got type Float64",
            ),
            (
                "vocabulary(s, i)",
                "vocabulary: top_k must be a positive integer literal, got the expression i",
            ),
            (
                "vocabulary(s, 2, 0)",
                "vocabulary: min_frequency must be a positive integer literal, got 0",
            ),
            (
                "vocabulary(s, 2, 1, 1)",
                "vocabulary expects 1 to 3 arguments",
            ),
        ] {
            let err = run_sql_err(&format!("SELECT {sql} FROM parts")).await;
            assert!(err.contains(message), "{sql}: {err}");
            let err = run_sql_err(&format!("SELECT g, {sql} FROM parts GROUP BY g")).await;
            assert!(err.contains(message), "{sql} with GROUP BY: {err}");
        }
    }
}
