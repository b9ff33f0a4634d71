"""A run saved by an earlier version of tfgan2 restores and continues identically.

The fixture (tests/fixtures/resume_b700c70, written by
tests/fixtures/make_resume_fixture.py at commit b700c70) holds checkpoints of
three configurations that together draw from every noise stream, and the state
each reached a few steps after its checkpoint. On the machine that wrote it the
continuation must match bit for bit; on another CPU the kernels may round in
another order, so there it must match to float32 round-off (a changed noise
stream or a lost optimizer slot moves weights by orders of magnitude more).
"""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

import resume_fixture as rf
import tfgan2

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "resume_b700c70")


def _same_machine():
    with open(os.path.join(FIXTURE, "machine.json")) as f:
        return json.load(f) == rf.machine()


@pytest.mark.parametrize("name", rf.NAMES)
def test_checkpoint_of_an_earlier_version_continues_identically(name, deterministic):
    gan = rf.build(name)
    checkpoint = tfgan2.callbacks.make_checkpoint(gan)
    checkpoint.read(os.path.join(FIXTURE, name, "ckpt")).assert_consumed()
    assert gan.step == rf.FIRST_STEPS
    gan.fit(rf.dataset(name, rf.FIRST_STEPS), steps_per_epoch=rf.MORE_STEPS, epochs=1,
            verbose=0, shuffle=False)
    expected = np.load(os.path.join(FIXTURE, name, "continued.npz"))
    got = rf.state(gan)
    assert sorted(got) == sorted(expected.files)
    exact = _same_machine()
    for key in expected.files:
        if exact:
            np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
        else:
            np.testing.assert_allclose(got[key], expected[key], rtol=1e-4, atol=1e-6,
                                       err_msg=key)
