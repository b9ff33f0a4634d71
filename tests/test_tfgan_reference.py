"""tfgan2 against the numbers of TF-GAN's own tests (tensorflow/gan).

Each test rebuilds the inputs of one TF-GAN test case and expects the value
TF-GAN's test publishes (a literal in the test, or the value of the reference
formula the test compares against, evaluated once on those inputs and written
here). The source file and case are named in each docstring. Where the two
libraries differ by convention, the test states the difference and checks it.
"""
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage

from tfgan2 import losses, metrics, regularizers, sliced_wasserstein, task_losses

# losses_impl_test.py, _LossesTest.init_constants
REAL = [-5.0, 1.4, 12.5, 2.7]
GEN = [10.0, 4.4, -5.5, 3.6]
TFGAN_LABEL_SMOOTHING = 0.25  # TF-GAN's default for its cross-entropy D losses


def mean(x):
    return float(np.mean(x))


@pytest.mark.parametrize("patch", [False, True])
@pytest.mark.parametrize("name, d_want, g_want, d_kwargs", [
    # LeastSquaresLossTest, ModifiedLossTest, WassersteinLossTest, HingeWassersteinLossTest
    ("least_squares", 41.73375, 17.69625, {}),
    ("non_saturating", 6.19637, 1.38582, {"label_smoothing": TFGAN_LABEL_SMOOTHING}),
    ("wasserstein", 0.22500, -3.12500, {}),
    ("hinge", 6.7500, -3.12500, {}),
])
def test_losses_impl_values(name, d_want, g_want, d_kwargs, patch):
    """losses_impl_test.py: *_all_correct and *_patch (logits reshaped to [2, 2])."""
    shape = [2, 2] if patch else [4]
    real, gen = tf.reshape(REAL, shape), tf.reshape(GEN, shape)
    d_fn, g_fn = losses.get(name)
    assert mean(d_fn(real, gen, **d_kwargs)) == pytest.approx(d_want, abs=1e-5)
    assert mean(g_fn(gen)) == pytest.approx(g_want, abs=1e-5)


def test_minimax_losses_and_the_generator_constant():
    """losses_impl_test.py MinimaxLossTest: d = 6.19637, g = -4.82408.

    TF-GAN's minimax generator loss is ``-minimax_discriminator_loss(ones, f)``:
    it treats a constant logit of 1 as a "real" term, adding ``-softplus(-1)``
    to tfgan2's ``-softplus(f)``. Same gradient, value shifted by -0.313262.
    """
    d = losses.minimax_discriminator_loss(REAL, GEN, label_smoothing=TFGAN_LABEL_SMOOTHING)
    assert mean(d) == pytest.approx(6.19637, abs=1e-5)
    ours = mean(losses.minimax_generator_loss(GEN))
    assert ours - math.log1p(math.exp(-1.0)) == pytest.approx(-4.82408, abs=1e-5)
    assert ours == pytest.approx(-4.51082, abs=1e-5)


def test_relativistic_average_losses():
    """examples/esrgan/losses_test.py test_ragan_loss: g = 4.9401135, d = 4.390114."""
    real, gen = [-2.0, 0.4, 12.5, 2.7], [10.0, 4.4, -5.5, 3.6]
    d_fn, g_fn = losses.get("relativistic_average")
    assert mean(d_fn(real, gen)) == pytest.approx(4.390114, abs=1e-5)
    assert mean(g_fn(gen, real)) == pytest.approx(4.9401135, abs=1e-5)


# losses_impl_test.py GradientPenaltyTest
GP_GEN = [[3.1, 2.3, -12.3, 32.1]]
GP_REAL = [[-12.3, 23.2, 16.3, -43.2]]


def tfgan_test_discriminator(x, training=False):
    return 2.0 * x  # 'dummy_d' initialized to 2.0, times the inputs


@pytest.mark.parametrize("kwargs, want", [
    ({}, 9.0),                       # test_all_correct
    ({"mode": "one_sided"}, 9.0),    # test_loss_using_one_sided_mode
    ({"target": 2.0}, 1.0),          # test_loss_with_gradient_norm_target
])
def test_gradient_penalty(kwargs, want):
    """A D of 4 outputs per example: grad of their sum is 2 per input, norm 4."""
    gp = regularizers.gradient_penalty(tfgan_test_discriminator, tf.constant(GP_REAL),
                                       tf.constant(GP_GEN), seed=[0, 1], **kwargs)
    assert gp.shape == (1,)
    assert float(gp[0]) == pytest.approx(want, abs=1e-5)


# losses_impl_test.py CombineAdversarialLossTest
@pytest.mark.parametrize("use_weight_factor", [True, False])
def test_combine_adversarial_loss(use_weight_factor):
    """_test_correct_helper: main = 2 v, adversarial = 3 v at v = 1."""
    variables = [tf.Variable(1.0)]
    eps = 1e-6
    with tf.GradientTape(persistent=True) as tape:
        main = variables[0] * 2
        adversarial = variables[0] * 3
        if use_weight_factor:
            combined = task_losses.combine_adversarial_loss(main, adversarial,
                                                            weight_factor=2.0)
            want = 1.0 * 2 + 2.0 * 1.0 * 3
        else:
            combined = task_losses.combine_adversarial_loss(
                main, adversarial, gradient_ratio=0.5, epsilon=eps, variables=variables,
                tape=tape)
            want = 1.0 * 2 + 2.0 / (3 * 0.5 + eps) * 1.0 * 3
    assert float(combined) == pytest.approx(want, abs=1e-5)
    # The weight is a constant: the gradient is 2 + w * 3.
    w = (want - 2.0) / 3.0
    assert float(tape.gradient(combined, variables)[0]) == pytest.approx(2 + 3 * w, abs=1e-4)


@pytest.mark.parametrize("kwargs", [{"weight_factor": 0.0}, {"gradient_ratio": 0.0}])
def test_combine_adversarial_loss_zero_weight_skips_it(kwargs):
    """_test_no_weight_skips_adversarial_loss_helper: the result is the main loss, 1.0."""
    combined = task_losses.combine_adversarial_loss(tf.constant(1.0), tf.constant(1.0),
                                                    **kwargs)
    assert float(combined) == 1.0


def test_combine_adversarial_loss_shapes_and_stable_norm():
    """test_valid/invalid_incompatible_shapes, test_stable_global_norm_avoids_overflow."""
    combined = task_losses.combine_adversarial_loss(tf.ones([5, 4, 3, 2]), tf.ones([5, 3, 2]),
                                                    weight_factor=1.0)
    assert combined.shape == (5,)
    with pytest.raises(ValueError, match="first .batch. dimension"):
        task_losses.combine_adversarial_loss(tf.ones([5, 4, 3, 2]), tf.ones([4, 3, 2]),
                                             weight_factor=1.0)
    tensors = [tf.ones([4]), tf.ones([4, 4]) * 1e19, None]
    assert np.isinf(tf.linalg.global_norm([t for t in tensors if t is not None]).numpy())
    stable = float(task_losses.gradient_norm(tensors))
    assert stable == pytest.approx(4e19, rel=1e-5)  # sqrt(16) * 1e19
    rng = np.random.default_rng(1234)  # test_stable_global_norm_unchanged
    tensors = [tf.constant(rng.uniform(-10, 10, [3] * i), tf.float32) for i in range(6)]
    assert float(task_losses.gradient_norm(tensors)) == pytest.approx(
        float(tf.linalg.global_norm(tensors)), rel=1e-5)


def test_cycle_consistency_loss():
    """CycleConsistencyLossTest.test_correct_loss: 5.25."""
    per_example = task_losses.cycle_consistency_loss(
        [[1.0, 2, 3], [4, 5, 6]], [[7.0, 8, 9], [10, 11, 12]], [1.0, 9], [-2.0, 3])
    np.testing.assert_allclose(per_example.numpy(), [4.5, 6.0])
    assert mean(per_example) == pytest.approx(5.25, abs=1e-5)


# features/clip_weights_test.py ClipWeightsTest
def test_weight_clipping():
    """One SGD step (lr 1) on loss = v from v = 2: 1.0 unclipped, 0.1 clipped at 0.1."""
    for clip, want in ((None, 1.0), (0.1, 0.1)):
        v = tf.Variable(2.0)
        opt = keras.optimizers.SGD(1.0)
        with tf.GradientTape() as tape:
            loss = v * 1.0
        opt.apply([tape.gradient(loss, v)], [v])
        if clip is not None:
            regularizers.clip_weights([v], clip)
        assert float(v.numpy()) == pytest.approx(want, abs=1e-7)
    with pytest.raises(ValueError, match="positive"):
        regularizers.clip_weights([tf.Variable(1.0)], -1)


# ------------------------------------------------------------------ eval
def test_inception_score_from_logits():
    """classifier_metrics_test.py test_classifier_score_from_logits_value."""
    logits = np.array([np.array([1.0, 2.0] * 500 + [4.0]), np.array([4.0, 5.0] * 500 + [6.0])])
    value = metrics.StreamingInceptionScore().update(logits=logits).result()
    assert value == pytest.approx(1.0008087798617324, rel=1e-6)


def test_streaming_inception_score_equals_one_large_batch():
    """test_streaming_classifier_score_from_logits_consistency: 100 batches of 512 x 256."""
    np.random.seed(0)
    data = np.random.randn(100, 512, 256).astype(np.float32)
    streaming = metrics.StreamingInceptionScore()
    sizes = set()
    for batch in data:
        streaming.update(logits=batch)
        sizes.add(streaming.state_size)
    whole = metrics.StreamingInceptionScore().update(logits=data.reshape(-1, 256)).result()
    assert streaming.result() == pytest.approx(whole, rel=1e-12)
    assert sizes == {2 + 256}  # the state does not grow with the samples
    z = data[0].astype(np.float64)
    probs = np.exp(z - z.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    assert metrics.StreamingInceptionScore().update(logits=data[0]).result() == \
        pytest.approx(metrics.inception_score(probs, splits=1), rel=1e-10)


def test_mean_only_and_diagonal_frechet_distance():
    """test_mean_only_/test_diagonal_only_frechet_classifier_distance_value (rtol 1e-4)."""
    np.random.seed(0)
    real = np.float32(np.random.randn(256, 2048))
    gen = np.float32(np.random.randn(256, 2048))
    assert metrics.mean_frechet_distance(real, gen) == pytest.approx(14.991064, rel=1e-4)
    assert metrics.diagonal_frechet_distance(real, gen) == pytest.approx(22.972427, rel=1e-4)


def test_frechet_distance():
    """test_frechet_classifier_distance_value (rtol 1e-4)."""
    np.random.seed(0)
    real = np.float32(np.random.randn(512, 256))
    gen = np.float32(np.random.randn(512, 256))
    assert metrics.frechet_distance(real, gen) == pytest.approx(65.742724, rel=1e-4)


@pytest.mark.parametrize("kind", ["full", "diagonal", "mean"])
def test_streaming_frechet_distance(kind):
    """test_streaming_frechet_classifier_distance_consistency: 5 calls of 512 x 256."""
    np.random.seed(0)
    real = np.float32(np.random.randn(5 * 512, 256))
    gen = np.float32(np.random.randn(5 * 512, 256))
    fd = metrics.StreamingFrechetDistance(kind)
    sizes = set()
    for i in range(5):
        fd.update(real=real[512 * i:512 * (i + 1)], fake=gen[512 * i:512 * (i + 1)])
        sizes.add(fd.state_size)
    whole = {"full": metrics.frechet_distance, "diagonal": metrics.diagonal_frechet_distance,
             "mean": metrics.mean_frechet_distance}[kind](real, gen)
    assert fd.result() == pytest.approx(whole, rel=1e-9)
    if kind == "full":
        assert fd.result() == pytest.approx(13.128780, rel=1e-4)  # TF-GAN's expected value
    held = {"full": 1 + 256 + 256 * 256, "diagonal": 1 + 2 * 256, "mean": 1 + 256}[kind]
    assert sizes == {2 * held}


def test_kernel_inception_distance_one_block():
    """test_kernel_classifier_distance_value: max_block_size=600, one block, std NaN."""
    np.random.seed(0)
    real = np.float32(np.random.randn(512, 256))
    gen = np.float32(np.random.randn(512, 256) * 1.1 + .05)
    kid, std = metrics.kernel_inception_distance_blocks(real, gen, max_block_size=600)
    assert kid == pytest.approx(0.0083886148, abs=1e-6)
    assert math.isnan(std)


@pytest.mark.parametrize("block_size, want_kid, want_std", [
    (50, 0.011034289, 0.0054663598),
    (512, 0.0076468698, 0.0016202418),
    (1000, 0.0082669717, float("nan")),
])
def test_kernel_inception_distance_block_sizes(block_size, want_kid, want_std):
    """test_kernel_classifier_distance_block_sizes: 512 real vs 768 generated."""
    np.random.seed(0)
    real = np.float32(np.random.randn(512, 256))
    gen = np.float32(np.random.randn(768, 256) * 1.1 + .05)
    kid, std = metrics.kernel_inception_distance_blocks(real, gen, max_block_size=block_size)
    assert kid == pytest.approx(want_kid, abs=1e-6)
    if math.isnan(want_std):
        assert math.isnan(std)
    else:
        assert std == pytest.approx(want_std, rel=1e-5)


# eval_utils_test.py StreamingUtilsTest
def test_streaming_covariance():
    """test_covariance_simple, test_covariance_batches, test_covariance_accuracy."""
    x = [[1.0, 2.0], [2.0, 1.0]]
    np.testing.assert_allclose(metrics.RunningStatistics().update(x).covariance,
                               np.cov(x, rowvar=False))
    np.random.seed(0)
    data = np.random.randn(8, 4, 5)
    stats = metrics.RunningStatistics()
    for batch in data:
        stats.update(batch)
    np.testing.assert_allclose(stats.covariance, np.cov(data.reshape(32, 5), rowvar=False),
                               rtol=1e-12, atol=1e-14)
    np.random.seed(0)
    data = np.random.randn(128, 32, 32)
    stats = metrics.RunningStatistics()
    sizes = set()
    for batch in data:
        stats.update(batch)
        sizes.add(stats.state_size)
    # TF-GAN asserts 1e-15; float64 merging in a different order agrees to a few ulps.
    np.testing.assert_allclose(stats.covariance, np.cov(data.reshape(-1, 32), rowvar=False),
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(stats.mean, data.reshape(-1, 32).mean(axis=0), atol=1e-15)
    assert sizes == {1 + 32 + 32 * 32}


# sliced_wasserstein_test.py
_BINOMIAL = np.float32([[1, 4, 6, 4, 1], [4, 16, 24, 16, 4], [6, 24, 36, 24, 6],
                        [4, 16, 24, 16, 4], [1, 4, 6, 4, 1]]) / 256.0


def _reference_pyramid(minibatch, num_levels):
    """The NCHW numpy/scipy reference of TF-GAN's test (cv2.pyrDown / pyrUp, mirrored edges)."""
    def down(m):
        return ndimage.convolve(m, _BINOMIAL[None, None], mode="mirror")[:, :, ::2, ::2]

    def up(m):
        s = m.shape
        res = np.zeros((s[0], s[1], s[2] * 2, s[3] * 2), m.dtype)
        res[:, :, ::2, ::2] = m
        return ndimage.convolve(res, _BINOMIAL[None, None] * 4.0, mode="mirror")

    pyramid = [minibatch.astype("f").copy()]
    for _ in range(1, num_levels):
        pyramid.append(down(pyramid[-1]))
        pyramid[-2] -= up(pyramid[-1])
    return pyramid


def test_laplacian_pyramid():
    """test_laplacian_pyramid: 256 x 3 x 32 x 32 normal data, 3 levels, atol 1e-6."""
    data = np.random.default_rng(0).normal(size=[256, 3, 32, 32]).astype("f")
    want = _reference_pyramid(data, 3)
    got = sliced_wasserstein.laplacian_pyramid(data.transpose(0, 2, 3, 1), 3)
    assert [g.shape for g in got] == [(256, 32, 32, 3), (256, 16, 16, 3), (256, 8, 8, 3)]
    for w, g in zip(want, got):
        np.testing.assert_allclose(w.transpose(0, 2, 3, 1), g, atol=1e-6)


@pytest.mark.parametrize("use_svd, want_real, want_fake", [
    (False, [0.014, 0.014], [0.014, 0.020]),  # test_sliced_wasserstein_distance
    (True, [0.013, 0.013], [0.014, 0.019]),   # test_sliced_wasserstein_distance_svd
])
def test_sliced_wasserstein_distance(use_svd, want_real, want_fake):
    """256 uniform vs 256 normal 32 x 32 x 3 images; TF-GAN's tolerance, rtol 0.15."""
    rng = np.random.default_rng(1)
    d1 = rng.uniform(size=[256, 32, 32, 3]).astype("f")
    d2 = rng.normal(size=[256, 32, 32, 3]).astype("f")
    levels = sliced_wasserstein.sliced_wasserstein_distance(d1, d2, use_svd=use_svd)
    assert [level.resolution for level in levels] == [32, 16]
    np.testing.assert_allclose([x[0] for x in levels], want_real, rtol=0.15)
    np.testing.assert_allclose([x[1] for x in levels], want_fake, rtol=0.15)


def test_swd_mismatched_shapes():
    """test_swd_mismatched (TF-GAN also rejects non-RGB; tfgan2 takes any channel count)."""
    d1 = np.zeros([8, 16, 16, 3], "f")
    for other in ([8, 16, 15, 3], [8, 15, 16, 3], [7, 16, 16, 3]):
        with pytest.raises(ValueError, match="one shape"):
            sliced_wasserstein.sliced_wasserstein_distance(d1, np.zeros(other, "f"))


# tpu/normalization_ops_test.py BatchNormTest.testBatchNorm(conditional=True)
def test_class_conditional_batch_norm():
    """4 images of 2 x 1 x 3, labels one_hot([0, 1, 2, 1], 5): TF-GAN's expected values."""
    from tfgan2.conditioning import ConditionalBatchNormalization

    x = np.stack([[[[5, 7, 2]], [[5, 8, 8]]], [[[1, 2, 0]], [[4, 0, 4]]],
                  [[[6, 2, 6]], [[5, 0, 5]]], [[[2, 4, 2]], [[6, 4, 1]]]]).astype("float32")
    expected = np.asarray(
        [[[[0.4375205, 1.30336881, -0.58830315]], [[0.4375205, 1.66291881, 1.76490951]]],
         [[[-1.89592218, -0.49438119, -1.37270737]], [[-0.14584017, -1.21348119, 0.19610107]]],
         [[[1.02088118, -0.49438119, 0.98050523]], [[0.4375205, -1.21348119, 0.58830321]]],
         [[[-1.31256151, 0.22471881, -0.58830315]], [[1.02088118, 0.22471881, -0.98050523]]]],
        dtype=np.float32)
    layer = ConditionalBatchNormalization()
    onehot = tf.one_hot([0, 1, 2, 1], 5)
    out = layer([x, onehot], training=True).numpy()
    np.testing.assert_allclose(out, expected, atol=1e-4)
    # With per-class scales and shifts, each image gets its class's.
    scale = np.arange(1, 16, dtype="float32").reshape(5, 3)
    shift = -np.arange(15, dtype="float32").reshape(5, 3)
    layer.gamma.kernel.assign(scale - 1.0)  # the layer scales by 1 + gamma(c)
    layer.beta.kernel.assign(shift)
    out = layer([x, onehot], training=True).numpy()
    labels = [0, 1, 2, 1]
    np.testing.assert_allclose(out, expected * scale[labels][:, None, None, :]
                               + shift[labels][:, None, None, :], atol=1e-3)
