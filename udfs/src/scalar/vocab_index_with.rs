//! `vocab_index_with(x, [v1, …, vV] [, num_oov_buckets])` and
//! `one_hot_with(x, [v1, …, vV])`: vocabulary lookups with the vocabulary
//! given as a literal — the fitted forms of `vocab_index` and `one_hot`.

use std::sync::{Arc, LazyLock, Mutex, Weak};

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float32Builder, Int64Array, ListArray, ListBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl,
    Signature, Volatility,
};

use super::args::{self, VocabList, check_arity};
use super::coerce_text_or_integer;
use crate::kernel::vocab::{Vocabulary, one_hot_slot};

static INDEX_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::DOC_SECTION,
        "Looks a value up in a literal vocabulary: its position 0..V-1; an unseen value gives \
         V + hash_bucket(x, num_oov_buckets) (default 1 bucket: V), or NULL when \
         num_oov_buckets is 0. NULL gives NULL. The fitted form of vocab_index.",
        "vocab_index_with(x, [v1, ..., vV] [, num_oov_buckets])",
    )
    .with_argument("x", "A string or integer expression.")
    .with_argument(
        "vocabulary",
        "A list literal of strings or integers, in index order.",
    )
    .with_argument(
        "num_oov_buckets",
        "A non-negative integer literal (default 1).",
    )
    .with_sql_example(
        "```sql
> SELECT x, vocab_index_with(x, ['b', 'a']) AS i FROM (VALUES ('a'), ('z'), (NULL)) t(x);
+---+---+
| x | i |
+---+---+
| a | 1 |
| z | 2 |
|   |   |
+---+---+
```",
    )
    .build()
});

static ONE_HOT_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        crate::DOC_SECTION,
        "One-hot encodes a value with a literal vocabulary: a list of V+1 Float32 with 1.0 at \
         the value's position and the last slot for unseen values. NULL gives NULL. The \
         fitted form of one_hot.",
        "one_hot_with(x, [v1, ..., vV])",
    )
    .with_argument("x", "A string or integer expression.")
    .with_argument(
        "vocabulary",
        "A list literal of strings or integers, in index order.",
    )
    .with_sql_example(
        "```sql
> SELECT x, one_hot_with(x, ['b', 'a']) AS v FROM (VALUES ('a'), ('z')) t(x);
+---+-----------------+
| x | v               |
+---+-----------------+
| a | [0.0, 1.0, 0.0] |
| z | [0.0, 0.0, 1.0] |
+---+-----------------+
```",
    )
    .build()
});

/// A vocabulary ready for lookups, of the key type of x.
#[derive(Debug)]
pub(crate) enum Lookup {
    Strings(Vocabulary<String>),
    Integers(Vocabulary<i64>),
}

impl Lookup {
    pub(crate) fn new(
        function: &str,
        x_type: &DataType,
        list: VocabList,
        oov: u64,
    ) -> Result<Self> {
        let x_is_text = matches!(
            x_type,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null
        );
        Ok(match list {
            VocabList::Strings(v) if x_is_text => Self::Strings(Vocabulary::new(v, oov)),
            VocabList::Integers(v) if !x_is_text => Self::Integers(Vocabulary::new(v, oov)),
            // An empty vocabulary fits either type.
            VocabList::Strings(v) if v.is_empty() => Self::Integers(Vocabulary::new([], oov)),
            VocabList::Integers(v) if v.is_empty() => Self::Strings(Vocabulary::new([], oov)),
            VocabList::Strings(_) => {
                return plan_err!(
                    "{function}: x is {x_type} but the vocabulary holds strings; cast x to VARCHAR"
                );
            }
            VocabList::Integers(_) => {
                return plan_err!(
                    "{function}: x is {x_type} but the vocabulary holds integers; cast x to BIGINT"
                );
            }
        })
    }

    pub(crate) fn len(&self) -> i64 {
        match self {
            Self::Strings(v) => v.len(),
            Self::Integers(v) => v.len(),
        }
    }

    /// The values in position order, as text (integers in decimal).
    pub(crate) fn texts(&self) -> Vec<Option<String>> {
        match self {
            Self::Strings(v) => v.by_position().into_iter().map(|k| k.cloned()).collect(),
            Self::Integers(v) => v
                .by_position()
                .into_iter()
                .map(|k| k.map(i64::to_string))
                .collect(),
        }
    }

    /// `vocab_index` over an array.
    fn indices(&self, x: &ArrayRef) -> Result<Int64Array> {
        Ok(match (self, x.data_type()) {
            (Self::Strings(v), DataType::Utf8) => x
                .as_string::<i32>()
                .iter()
                .map(|s| s.and_then(|s| v.index(s)))
                .collect(),
            (Self::Strings(v), DataType::LargeUtf8) => x
                .as_string::<i64>()
                .iter()
                .map(|s| s.and_then(|s| v.index(s)))
                .collect(),
            (Self::Strings(v), DataType::Utf8View) => {
                // Equal views are equal strings (see memo.rs).
                let a = x.as_string_view();
                let mut memo = super::memo::ViewMemo::<Option<i64>, 1>::new();
                (0..a.len())
                    .map(|i| {
                        if a.is_null(i) {
                            None
                        } else {
                            memo.get([a.views()[i]], || v.index(a.value(i)))
                        }
                    })
                    .collect()
            }
            (Self::Integers(v), DataType::Int64) => x
                .as_primitive::<Int64Type>()
                .iter()
                .map(|i| i.and_then(|i| v.index(i)))
                .collect(),
            (_, DataType::Null) => Int64Array::new_null(x.len()),
            (_, other) => return exec_err!("vocabulary lookup: unsupported type {other}"),
        })
    }

    /// The position (not the OOV index) of each value; NULL stays NULL via
    /// the outer Option.
    fn positions(&self, x: &ArrayRef) -> Result<Vec<Option<Option<i64>>>> {
        Ok(match (self, x.data_type()) {
            (Self::Strings(v), DataType::Utf8) => x
                .as_string::<i32>()
                .iter()
                .map(|s| s.map(|s| v.position(s)))
                .collect(),
            (Self::Strings(v), DataType::LargeUtf8) => x
                .as_string::<i64>()
                .iter()
                .map(|s| s.map(|s| v.position(s)))
                .collect(),
            (Self::Strings(v), DataType::Utf8View) => x
                .as_string_view()
                .iter()
                .map(|s| s.map(|s| v.position(s)))
                .collect(),
            (Self::Integers(v), DataType::Int64) => x
                .as_primitive::<Int64Type>()
                .iter()
                .map(|i| i.map(|i| v.position(&i)))
                .collect(),
            (_, DataType::Null) => vec![None; x.len()],
            (_, other) => return exec_err!("vocabulary lookup: unsupported type {other}"),
        })
    }
}

/// `vocab_index_with` or `one_hot_with`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct VocabWith {
    one_hot: bool,
    signature: Signature,
    lookups: LookupCache,
}

/// The lookups last built, by the vocabulary list they were built from: a
/// plan evaluates the same literal list batch after batch (and planning
/// checks it several times), and building a lookup of a large vocabulary
/// (1M entries: about a second) each time would cost more than the lookups.
/// Keyed by the list's allocation, held weakly: an entry whose plan is gone
/// is dropped at the next use; at most [`CACHED`] are kept.
#[derive(Debug, Default)]
struct LookupCache(Mutex<Vec<CachedLookup>>);

#[derive(Debug)]
struct CachedLookup {
    list: Weak<ListArray>,
    x_type: DataType,
    oov: Option<ScalarValue>,
    lookup: Arc<Lookup>,
}

const CACHED: usize = 8;

// A cache says nothing about what the function is.
impl PartialEq for LookupCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for LookupCache {}
impl std::hash::Hash for LookupCache {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

impl VocabWith {
    /// `vocab_index_with`.
    pub fn index() -> Self {
        Self {
            one_hot: false,
            signature: Signature::user_defined(Volatility::Immutable),
            lookups: LookupCache::default(),
        }
    }

    /// `one_hot_with`.
    pub fn one_hot() -> Self {
        Self {
            one_hot: true,
            signature: Signature::user_defined(Volatility::Immutable),
            lookups: LookupCache::default(),
        }
    }

    fn syntax(&self) -> &'static str {
        if self.one_hot {
            "(x, [v1, ..., vV])"
        } else {
            "(x, [v1, ..., vV] [, num_oov_buckets])"
        }
    }

    /// Reads the literal arguments; `None` when one is not known yet.
    pub(crate) fn lookup(
        &self,
        x_type: &DataType,
        literals: &[Option<&ScalarValue>],
        strict: bool,
    ) -> Result<Option<Lookup>> {
        let name = self.name();
        if !strict && literals.iter().skip(1).any(Option::is_none) {
            return Ok(None);
        }
        let list = args::vocab_list(name, "vocabulary", literals[1])?;
        let oov = match literals.get(2) {
            Some(v) => args::non_negative_int(name, "num_oov_buckets", *v)?,
            None => 1,
        };
        Lookup::new(name, x_type, list, oov).map(Some)
    }

    /// [`VocabWith::lookup`], built once per vocabulary list
    /// ([`LookupCache`]).
    fn cached_lookup(
        &self,
        x_type: &DataType,
        literals: &[Option<&ScalarValue>],
        strict: bool,
    ) -> Result<Option<Arc<Lookup>>> {
        let Some(Some(ScalarValue::List(list))) = literals.get(1) else {
            return Ok(self.lookup(x_type, literals, strict)?.map(Arc::new));
        };
        let oov = literals.get(2).copied().flatten().cloned();
        let key = Arc::downgrade(list);
        {
            let mut cache = self.lookups.0.lock().expect("lookup cache");
            cache.retain(|c| c.list.strong_count() > 0);
            if let Some(c) = cache
                .iter()
                .find(|c| c.list.ptr_eq(&key) && &c.x_type == x_type && c.oov == oov)
            {
                return Ok(Some(Arc::clone(&c.lookup)));
            }
        }
        let Some(lookup) = self.lookup(x_type, literals, strict)? else {
            return Ok(None);
        };
        let lookup = Arc::new(lookup);
        let mut cache = self.lookups.0.lock().expect("lookup cache");
        if cache.len() == CACHED {
            cache.remove(0);
        }
        cache.push(CachedLookup {
            list: key,
            x_type: x_type.clone(),
            oov,
            lookup: Arc::clone(&lookup),
        });
        Ok(Some(lookup))
    }

    fn output_type(&self) -> DataType {
        if self.one_hot {
            DataType::new_list(DataType::Float32, true)
        } else {
            DataType::Int64
        }
    }
}

impl ScalarUDFImpl for VocabWith {
    fn name(&self) -> &str {
        if self.one_hot {
            "one_hot_with"
        } else {
            "vocab_index_with"
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let arity = if self.one_hot { 2..=2 } else { 2..=3 };
        check_arity(self.name(), self.syntax(), arg_types.len(), arity)?;
        let mut out = arg_types.to_vec();
        out[0] = coerce_text_or_integer(self.name(), &arg_types[0])?;
        if out[0] == DataType::UInt64 {
            out[0] = DataType::Int64;
        }
        Ok(out)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(self.output_type())
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.cached_lookup(args.arg_fields[0].data_type(), args.scalar_arguments, false)?;
        let nullable = args.arg_fields[0].is_nullable()
            || (!self.one_hot
                && matches!(
                    args.scalar_arguments.get(2),
                    Some(Some(ScalarValue::Int64(Some(0))))
                ));
        Ok(Arc::new(Field::new(
            self.name(),
            self.output_type(),
            nullable,
        )))
    }

    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        let x_type = info.get_data_type(&args[0]).unwrap_or(DataType::Null);
        self.cached_lookup(&x_type, &args::literals(&args), true)?;
        Ok(ExprSimplifyResult::Original(args))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let literals = args::scalar_values(&args.args);
        let x_type = args.arg_fields[0].data_type();
        let lookup = self
            .cached_lookup(x_type, &literals, true)?
            .expect("strict lookups always resolve");
        let (x, scalar) = match &args.args[0] {
            ColumnarValue::Array(a) => (Arc::clone(a), false),
            ColumnarValue::Scalar(s) => (s.to_array()?, true),
        };
        let out: ArrayRef = if self.one_hot {
            let size = lookup.len();
            let width = size as usize + 1;
            let mut builder = ListBuilder::with_capacity(Float32Builder::new(), x.len())
                .with_field(Arc::new(Field::new_list_field(DataType::Float32, true)));
            for p in lookup.positions(&x)? {
                match p {
                    None => builder.append_null(),
                    Some(position) => {
                        let slot = one_hot_slot(position, size);
                        let values = builder.values();
                        for i in 0..width {
                            values.append_value(if i == slot { 1.0 } else { 0.0 });
                        }
                        builder.append(true);
                    }
                }
            }
            Arc::new(builder.finish())
        } else {
            Arc::new(lookup.indices(&x)?)
        };
        if scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
        } else {
            Ok(ColumnarValue::Array(out))
        }
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(if self.one_hot {
            &ONE_HOT_DOC
        } else {
            &INDEX_DOC
        })
    }
}
