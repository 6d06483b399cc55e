import numpy as np
import pytest

from zsbench.api import ClassSplit, ClassTexts, Fold, LeakageError, ZsbenchError
from zsbench.views import carve_validation_classes, train_view, validation_problem


def _bank(n):
    return ClassTexts(class_ids=np.arange(n), class_names=[f"c{i}" for i in range(n)],
                      texts={"name": [[f"c{i}"] for i in range(n)]},
                      embeddings={"name": [np.full((1, 3), i, np.float32) for i in range(n)]})


def _fold(unseen=(4, 5)):
    split = ClassSplit(id="s", dataset="d", num_classes=6, unseen=tuple(unseen))
    return Fold(name="f", dataset="d", split=split, train=np.arange(8), test_unseen=np.arange(2),
                test_seen=np.arange(2))


def test_train_view_holds_only_seen_classes_and_texts():
    fold = _fold()
    v = train_view(np.zeros((3, 2)), np.array([0, 1, 3]), _bank(6), fold, "features")
    assert v.texts.class_ids.tolist() == [0, 1, 2, 3]
    assert not set(v.texts.class_names) & {"c4", "c5"}


def test_train_view_refuses_unseen_samples():
    with pytest.raises(LeakageError, match=r"unseen classes \[5\]"):
        train_view(np.zeros((3, 2)), np.array([0, 1, 5]), _bank(6), _fold(), "features")


def test_split_validation_errors():
    with pytest.raises(ZsbenchError, match="both seen and unseen"):
        ClassSplit(id="x", dataset="d", num_classes=4, unseen=(1,), seen=(0, 1)).validate("f.json")
    with pytest.raises(ZsbenchError, match="outside"):
        ClassSplit(id="x", dataset="d", num_classes=4, unseen=(7,)).validate()
    with pytest.raises(ZsbenchError, match="not seen classes"):
        ClassSplit(id="x", dataset="d", num_classes=4, unseen=(3,), validation_unseen=(3,)).validate()


def test_validation_problem_never_uses_unseen_or_test():
    labels = np.repeat(np.arange(4), 10)  # fold training labels: seen classes 0..3 only
    val_unseen = carve_validation_classes(None, np.arange(4), n_unseen=2, seed=0)
    assert len(val_unseen) == 1 and set(val_unseen) <= set(range(4))
    prob = validation_problem(labels, np.arange(4), val_unseen, seed=0)
    assert not np.isin(labels[prob.train_idx], val_unseen).any()
    assert np.isin(labels[prob.test_idx], val_unseen).sum() == 10
    assert not set(prob.train_idx) & set(prob.test_idx)
    assert carve_validation_classes((2,), np.arange(4), 2, 0).tolist() == [2]
