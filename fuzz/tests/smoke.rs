//! Every fuzz target's body over its built-in corpus, on the stable toolchain:
//! `cargo test --manifest-path fuzz/Cargo.toml`.

use weir_fuzz::corpus;

#[test]
fn duration() {
    for text in corpus::DURATIONS {
        weir_fuzz::duration(text.as_bytes());
    }
}

#[test]
fn action() {
    for value in corpus::ACTIONS {
        weir_fuzz::action(value.as_bytes());
    }
}

#[test]
fn microservice() {
    for json in corpus::MICROSERVICES {
        weir_fuzz::microservice(json.as_bytes());
    }
}

#[test]
fn query_template() {
    for query in corpus::QUERIES {
        weir_fuzz::query_template(query.as_bytes());
    }
}

#[test]
fn prometheus_answer() {
    for (status, body) in corpus::ANSWERS {
        let mut data = (status - 100).to_be_bytes().to_vec();
        data.extend_from_slice(body.as_bytes());
        weir_fuzz::prometheus_answer(&data);
    }
}

#[test]
fn the_microservice_corpus_reads_but_for_its_broken_json() {
    let read = corpus::MICROSERVICES
        .iter()
        .filter(|json| serde_json::from_str::<weir::api::Microservice>(json).is_ok())
        .count();
    assert_eq!(read, corpus::MICROSERVICES.len() - 3);
}
