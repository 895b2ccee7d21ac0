//! The real Fashion-MNIST release, when it is installed (`apt-get install
//! dataset-fashion-mnist`, or files in `$EOS_DATA_DIR/fashion-mnist`). `cargo xtask ci`
//! installs it first, and under CI (`CI` set) a missing data set FAILS this test. A
//! plain `cargo test` without the data prints a notice and skips it (the loader's
//! logic is covered by the synthetic-file unit tests).
//!
//! Reference values were computed independently from the Debian package's files with
//! Python's `gzip` module (`gzip.open('train-labels-idx1-ubyte.gz').read()[8:18]` etc.):
//! first training labels 9, 0, 0, 3, 0, 2, 7, 2, 5, 5; 6 000 images per class; the
//! first image's pixel sum 76 247; first test labels 9, 2, 1, 1, 6.

use eos_data::{fashion_mnist_dir, load_fashion_mnist, Split, Targets};

#[test]
fn real_fashion_mnist_train_and_test_sets() {
    let dir = match fashion_mnist_dir() {
        Ok(dir) => dir,
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but Fashion-MNIST is missing (run `cargo xtask data`): {e}"
            );
            eprintln!("SKIPPED real_fashion_mnist_train_and_test_sets: {e}");
            return;
        }
    };
    eprintln!("Fashion-MNIST found in {}", dir.display());
    let train = load_fashion_mnist(Split::Train, Targets::OneHot).expect("installed data loads");
    assert_eq!(
        (train.len(), train.input_dim(), train.target_dim()),
        (60_000, 784, 10)
    );
    assert_eq!(train.num_classes, Some(10));
    let labels = train.labels.as_deref().expect("classification data");
    assert_eq!(&labels[..10], &[9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
    let mut counts = [0usize; 10];
    labels.iter().for_each(|&l| counts[l as usize] += 1);
    assert_eq!(counts, [6000; 10]);

    let first = train.first_n(1).expect("n >= 1");
    let x0 = first.x_vec().expect("f64");
    let sum: f64 = x0.iter().sum();
    // Pixel sum 76 247 / 255, up to f64 round-off over 784 additions.
    assert!((sum - 76_247.0 / 255.0).abs() < 1e-9, "{sum}");
    assert!(x0.iter().all(|&p| (0.0..=1.0).contains(&p)));
    assert_eq!(first.y_vec().expect("f64")[9], 1.0); // one-hot of label 9

    let test = load_fashion_mnist(Split::Test, Targets::OneHot).expect("installed data loads");
    assert_eq!((test.len(), test.input_dim()), (10_000, 784));
    assert_eq!(
        &test.labels.as_deref().expect("labels")[..5],
        &[9, 2, 1, 1, 6]
    );
}
