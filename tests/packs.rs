//! Model packs: sizes, fidelity against the golden embeddings, and refusal of damaged files.

mod common;
use cairn::model::pack::{self, Pack, Quant};
use cairn::model::{Encoder, ModelFiles};
use serde::Deserialize;
use std::path::Path;

/// Issue 3's fidelity bounds for int8 (cosine to sentence-transformers fp32).
const INT8_MEAN_COSINE: f32 = 0.9995;
const INT8_MIN_COSINE: f32 = 0.998;
/// int4 falls short of the goal (mean 0.99, min 0.975) today; these floors
/// guard what the int4 pack reaches against regressions: GPTQ-rounded block-32 int4
/// with the value projections and the last three attention outputs at int8, mean
/// 0.9851, min 0.9483 at 13.95 MB (plain round-to-nearest int4 reached 0.957 / 0.878).
const INT4_MEAN_FLOOR_TODAY: f32 = 0.984;
const INT4_MIN_FLOOR_TODAY: f32 = 0.945;
/// Pack size limits in bytes.
const INT8_MAX_BYTES: usize = 24_000_000;
const INT4_MAX_BYTES: usize = 14_000_000;

#[derive(Deserialize)]
struct Golden {
    cases: Vec<Case>,
}
#[derive(Deserialize)]
struct Case {
    text: String,
    embedding: Vec<f32>,
}

fn golden() -> Golden {
    serde_json::from_slice(&std::fs::read(common::root().join("tests/data/minilm_public.json")).unwrap()).unwrap()
}

/// (mean, min) cosine of the encoder's embeddings to the golden ones.
fn fidelity(enc: &Encoder) -> (f32, f32) {
    let g = golden();
    let texts: Vec<String> = g.cases.iter().map(|c| c.text.clone()).collect();
    let got = enc.embed_many(&texts, &|| {}).unwrap();
    let cos: Vec<f32> = g.cases.iter().zip(&got).map(|(c, v)| common::cosine(&c.embedding, v)).collect();
    let (mean, min) = (cos.iter().sum::<f32>() / cos.len() as f32, cos.iter().copied().fold(1.0, f32::min));
    eprintln!("golden cosine over {} cases: mean {mean:.6}, min {min:.6}", cos.len());
    (mean, min)
}

fn build(quant: Quant) -> Vec<u8> {
    let files = ModelFiles::read_dir(&common::model_dir()).unwrap();
    pack::build(&files, quant).unwrap().0
}

#[test]
fn int8_pack_is_small_and_faithful() {
    let bytes = build(Quant::Int8);
    assert!(bytes.len() <= INT8_MAX_BYTES, "int8 pack is {} bytes > {INT8_MAX_BYTES}", bytes.len());
    let enc = Encoder::load_pack(&Pack::parse(bytes, Path::new("int8")).unwrap()).unwrap();
    let (mean, min) = fidelity(&enc);
    assert!(mean >= INT8_MEAN_COSINE && min >= INT8_MIN_COSINE, "int8: mean {mean}, min {min}");
}

#[test]
fn int4_pack_is_smaller_and_holds_its_floor() {
    let bytes = build(Quant::Int4);
    assert!(bytes.len() <= INT4_MAX_BYTES, "int4 pack is {} bytes > {INT4_MAX_BYTES}", bytes.len());
    let enc = Encoder::load_pack(&Pack::parse(bytes, Path::new("int4")).unwrap()).unwrap();
    let (mean, min) = fidelity(&enc);
    assert!(mean >= INT4_MEAN_FLOOR_TODAY && min >= INT4_MIN_FLOOR_TODAY, "int4: mean {mean}, min {min}");
}

#[test]
fn f32_pack_equals_the_model_directory_and_damage_is_refused() {
    let bytes = build(Quant::F32);
    let from_pack = Encoder::load_pack(&Pack::parse(bytes.clone(), Path::new("f32")).unwrap()).unwrap();
    let from_dir = Encoder::from_dir(&common::model_dir()).unwrap();
    for text in ["entanglement swapping", "", "How do I run Qiskit on a real device?"] {
        assert_eq!(from_pack.tokenize(text).unwrap(), from_dir.tokenize(text).unwrap());
        assert_eq!(from_pack.embed(text).unwrap(), from_dir.embed(text).unwrap(), "{text:?}");
    }
    let err = Pack::parse(bytes[..bytes.len() / 2].to_vec(), Path::new("half.cpk")).err().expect("truncated pack refused").to_string();
    assert!(err.contains("half.cpk") && err.contains("truncated"), "{err}");
    let mut bad = bytes;
    bad[0] = b'X';
    let err = Pack::parse(bad, Path::new("bad.cpk")).err().expect("bad magic refused").to_string();
    assert!(err.contains("bad.cpk") && err.contains("magic"), "{err}");
}
