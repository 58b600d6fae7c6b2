//! The encoder against golden outputs made by sentence-transformers (tests/data/minilm_public.json).

mod common;
use cairn::model::Encoder;
use serde::Deserialize;

/// The f32 encoder must match PyTorch to this cosine on every case.
const MIN_COSINE_F32: f32 = 0.9999;

#[derive(Deserialize)]
struct Golden {
    max_seq_length: usize,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    text: String,
    input_ids: Vec<u32>,
    embedding: Vec<f32>,
}

fn golden() -> Golden {
    let bytes = std::fs::read(common::root().join("tests/data/minilm_public.json")).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn token_ids_equal_the_reference_tokenizer() {
    let g = golden();
    let enc = Encoder::from_dir(&common::model_dir()).unwrap();
    assert!(g.cases.iter().any(|c| c.input_ids.len() == g.max_seq_length), "golden set covers truncation");
    for (i, c) in g.cases.iter().enumerate() {
        let ids = enc.tokenize(&c.text).unwrap();
        assert_eq!(ids, c.input_ids, "case {i} ({:?})", c.text);
    }
}

#[test]
fn f32_embeddings_match_sentence_transformers() {
    let g = golden();
    let enc = Encoder::from_dir(&common::model_dir()).unwrap();
    let texts: Vec<String> = g.cases.iter().map(|c| c.text.clone()).collect();
    let got = enc.embed_many(&texts, &|| {}).unwrap();
    for (i, (c, v)) in g.cases.iter().zip(&got).enumerate() {
        assert_eq!(v.len(), c.embedding.len(), "case {i}: width");
        let cos = common::cosine(v, &c.embedding);
        assert!(cos >= MIN_COSINE_F32, "case {i} ({:?}): cosine {cos} < {MIN_COSINE_F32}", c.text);
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "case {i}: norm {norm}, expected unit length");
    }
}
