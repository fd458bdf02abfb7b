"""kdeep.scoring on real MNIST: probabilities by the contract, the Score, and its checks; the timing loop."""
import numpy as np
import pytest

from kdeep import scoring
from kdeep.errors import ConfigError, DataError
from kdeep.timing import time_calls


def test_score_of_known_probabilities():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4], [0.5, 0.4, 0.1]], np.float32)
    labels = np.array([0, 1, 1, 2])
    score = scoring.score_probabilities(probs, labels)
    assert score.accuracy == 0.5 and score.n == 4
    assert score.confusion_matrix == ((1, 0, 0), (0, 1, 1), (1, 0, 0))
    assert score.per_class_accuracy == (1.0, 0.5, 0.0)
    assert score.loss == pytest.approx(-np.mean(np.log([0.7, 0.8, 0.3, 0.1])), rel=1e-6)
    assert score.to_dict()["confusion_matrix"] == [[1, 0, 0], [0, 1, 1], [1, 0, 0]]
    assert scoring.agreement(probs, probs[[0, 1, 3, 2]]) == 0.5


def test_bad_labels_are_one_line_errors():
    probs = np.full((2, 3), 1 / 3, np.float32)
    with pytest.raises(DataError, match="labels go up to 3 but the model has 3 outputs"):
        scoring.score_probabilities(probs, np.array([0, 3]))
    with pytest.raises(DataError, match="as many labels as images"):
        scoring.score_probabilities(probs, np.array([0]))


def test_a_model_scores_uint8_mnist_through_its_contract(mnist):
    import kdeep.models

    (_, _), (x_test, y_test) = mnist
    model = kdeep.models.build("deepconvnet")  # untrained: near chance, but probabilities all the same
    probs = scoring.predict(model, x_test[:64], batch_size=32)
    assert probs.shape == (64, 10) and probs.dtype == np.float32 and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    by_floats = scoring.predict(model, x_test[:64].astype(np.float32) / 255.0)  # floats are taken as in [0, 1]
    assert np.allclose(probs, by_floats, atol=1e-6)
    score = scoring.score(model, (x_test[:64], y_test[:64]))
    assert score.n == 64 and score.accuracy == scoring.accuracy(probs, y_test[:64])
    with pytest.raises(DataError, match=r"takes images of shape \(28, 28, 1\), not \(32, 32, 3\)"):
        scoring.predict(model, np.zeros((2, 32, 32, 3), np.uint8))


def test_time_calls_counts_and_refuses_zero_runs():
    calls = []
    timings = time_calls(lambda: calls.append(1), runs=3, warmup=2)
    assert len(calls) == 5 and len(timings.seconds) == 3 and timings.total >= timings.median >= 0
    with pytest.raises(ConfigError, match="timed runs must be an integer >= 1, got 0"):
        time_calls(lambda: None, runs=0)


def test_time_calls_stops_at_its_budget_after_the_minimum_runs():
    import time

    slow = time_calls(lambda: time.sleep(0.01), runs=200, max_seconds=0.05, min_runs=3)
    assert 3 <= slow.runs <= 6 and slow.total >= 0.05  # ~5 sleeps of 10 ms, not 200
    fast = time_calls(lambda: time.sleep(0.01), runs=4, max_seconds=10.0, min_runs=1)
    assert fast.runs == 4  # under its budget: every run
    floor = time_calls(lambda: time.sleep(0.01), runs=200, max_seconds=1e-6, min_runs=7)
    assert floor.runs == 7  # over budget at once: the minimum still runs
    with pytest.raises(ConfigError, match="the timing budget must be > 0 seconds, got 0"):
        time_calls(lambda: None, runs=3, max_seconds=0)
    with pytest.raises(ConfigError, match="minimum timed runs must be an integer >= 1, got 0"):
        time_calls(lambda: None, runs=3, min_runs=0)
