//! The limits of a layer list (issue 16): residual blocks nested beyond
//! `MAX_NESTING`, more than `MAX_LAYERS` layers, sizes over `MAX_DIM` and parameters
//! over the memory limit are refused with an error naming the limit — never a stack
//! overflow, an exponential shape walk, an arithmetic overflow or an allocation abort.

use candle_core::{DType, Device};
use eos_model::net::{
    param_count, parse_layers, random_bytes, LayerKind, Network, Residual, MAX_DIM, MAX_LAYERS,
    MAX_NESTING,
};

/// `depth` residual blocks inside one another around one `act` layer, as JSON.
fn nested_json(depth: usize) -> String {
    let open = r#"{"type": "residual", "body": ["#.repeat(depth);
    let close = "]}".repeat(depth);
    format!(r#"[{open}{{"type": "act", "fn": "tanh"}}{close}]"#)
}

fn err(json: &str) -> String {
    match parse_layers(json) {
        Ok(l) => panic!("accepted {} layers", l.len()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn nesting_up_to_the_limit_works_and_beyond_is_refused_naming_it() {
    // At the limit: parses, and the shape walk of the nested blocks stays cheap.
    let layers = parse_layers(&nested_json(MAX_NESTING)).unwrap();
    let net = Network::random(layers, &[3], 1, 0.0, DType::F64, &Device::Cpu).unwrap();
    assert_eq!(net.output_shape().unwrap(), vec![3]);
    // One more, and far more (a stack overflow in a recursive parser).
    for depth in [MAX_NESTING + 1, 200, 100_000] {
        let msg = err(&nested_json(depth));
        assert!(
            msg.contains(&format!("at most {MAX_NESTING} residual blocks")),
            "{depth}: {msg}"
        );
    }
}

#[test]
fn nesting_built_in_code_is_refused_by_the_network() {
    let mut layers = parse_layers(r#"[{"type": "act"}]"#).unwrap();
    for _ in 0..=MAX_NESTING {
        layers = vec![LayerKind::Residual(Residual { body: layers })];
    }
    let e = Network::random(layers, &[3], 1, 0.0, DType::F64, &Device::Cpu).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("more than {MAX_NESTING} residual blocks")),
        "{msg}"
    );
    // The path names the innermost block over the limit.
    let deepest = format!("layers.0{}", ".body.0".repeat(MAX_NESTING));
    assert!(msg.starts_with(&deepest), "{msg}");
}

#[test]
fn too_many_layers_are_refused_naming_the_limit() {
    let ok = std::iter::repeat_n(r#"{"type": "act"}"#, MAX_LAYERS)
        .collect::<Vec<_>>()
        .join(",");
    assert_eq!(parse_layers(&format!("[{ok}]")).unwrap().len(), MAX_LAYERS);
    let msg = err(&format!(r#"[{ok}, {{"type": "flatten"}}]"#));
    assert!(
        msg.contains(&format!(
            "layers.{MAX_LAYERS}: more than {MAX_LAYERS} layers"
        )),
        "{msg}"
    );
    // A layer list over 1 MiB of text is refused before it is parsed.
    let long = std::iter::repeat_n(r#"{"type": "act"}"#, 70_000)
        .collect::<Vec<_>>()
        .join(",");
    let msg = err(&format!("[{long}]"));
    assert!(
        msg.contains(&format!(
            "over the limit of {}",
            eos_model::net::MAX_JSON_BYTES
        )),
        "{msg}"
    );
}

#[test]
fn sizes_over_the_limit_are_refused() {
    for (field, json) in [
        ("out", r#"[{"type": "dense", "out": 2147483649}]"#),
        (
            "padding",
            r#"[{"type": "conv2d", "out": 1, "kernel": 1, "padding": 18446744073709551615}]"#,
        ),
        (
            "vocab",
            r#"[{"type": "embedding", "vocab": 4294967296, "dim": 2}]"#,
        ),
    ] {
        let msg = err(json);
        assert!(
            msg.contains(&format!("`{field}` is")) && msg.contains(&format!("limit of {MAX_DIM}")),
            "{msg}"
        );
    }
    // Within the field limit, the shapes still may not overflow or explode per sample:
    // padding 2³¹ on a 2×2 image, a flattened input of 2⁴⁰ numbers.
    let pad = parse_layers(r#"[{"type": "conv2d", "out": 1, "kernel": 1, "padding": 2147483648}]"#)
        .unwrap();
    let msg = param_count(&pad, &[1, 2, 2]).unwrap_err().to_string();
    assert!(
        msg.starts_with("layers.0 (conv2d): output shape [1, 4294967298, 4294967298]"),
        "{msg}"
    );
    assert!(msg.contains("numbers per sample"), "{msg}");
    let flat = parse_layers(r#"[{"type": "flatten"}]"#).unwrap();
    let msg = param_count(&flat, &[1 << 20, 1 << 20])
        .unwrap_err()
        .to_string();
    assert!(msg.contains("input shape [1048576, 1048576]"), "{msg}");
    let msg = param_count(&flat, &[usize::MAX, 2, 0])
        .unwrap_err()
        .to_string();
    assert!(msg.contains("numbers per sample"), "{msg}");
}

#[test]
fn parameters_are_sized_before_they_are_allocated() {
    // 2³⁰ × 2²⁰ weights: 8 PiB in f64, over any machine's memory.
    let layers = parse_layers(r#"[{"type": "dense", "out": 1073741824, "bias": false}]"#).unwrap();
    assert_eq!(param_count(&layers, &[1 << 20]).unwrap(), 1 << 50);
    let limit = eos_model::memory::limit()
        .unwrap()
        .expect("a memory limit (EOS_MEMORY_LIMIT or /proc/meminfo) for this test");
    assert!(limit < 1 << 50);
    let e = Network::random(layers, &[1 << 20], 1, 0.0, DType::F64, &Device::Cpu).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with("the network's 1125899906842624 parameters (F64) need about"),
        "{msg}"
    );
    assert!(msg.contains("EOS_MEMORY_LIMIT"), "{msg}");
    // The estimate: every parameter in the dtype plus two f64 copies of the largest.
    assert_eq!(random_bytes(&[10, 30, 20], 4), 60 * 4 + 2 * 8 * 30);
    assert_eq!(random_bytes(&[], 8), 0);
}

/// Shapes of nested blocks take linear time (fuzz net-case seed 20261207 input 39542:
/// 16 nested blocks of many layers took 2 s and 226 MB when each block walked its
/// body twice, 2^16 walks of the innermost one).
#[test]
fn shapes_of_nested_blocks_are_walked_once() {
    let acts = std::iter::repeat_n(r#"{"type": "act"}"#, 40)
        .collect::<Vec<_>>()
        .join(",");
    let mut json = format!("[{acts}]");
    for _ in 0..MAX_NESTING {
        json = format!(r#"[{acts}, {{"type": "residual", "body": {json}}}]"#);
    }
    let layers = parse_layers(&json).unwrap();
    assert_eq!(param_count(&layers, &[3]).unwrap(), 0);
    let net = Network::random(layers, &[3], 1, 0.0, DType::F64, &Device::Cpu).unwrap();
    assert_eq!(net.output_shape().unwrap(), vec![3]);
}
