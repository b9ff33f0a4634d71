"""InfoGAN's structured latent codes (Chen et al. 2016, arXiv:1606.03657).

`LatentCodes` describes the codes appended to the noise ``z``: categorical
codes (uniform over ``k`` values, fed to G one-hot) and continuous codes
(uniform on [-1, 1]). G's input is ``[z, onehot(c_1), ..., onehot(c_n),
c_cont]``, of size ``latent_dim + codes.dim``; D's Q head predicts
``codes.q_dim`` numbers (the logits of each categorical code, then the
means of the continuous ones), and `LatentCodes.penalty` is
`tfgan2.losses.mutual_information_penalty` of the codes under that
prediction.
"""
import numpy as np
import tensorflow as tf

from tfgan2 import losses

__all__ = ["LatentCodes"]


class LatentCodes:
    """Categorical and continuous InfoGAN codes.

    Args:
      categorical: the number of values of each categorical code, e.g. ``(10,)``.
      continuous: the number of continuous codes, each ``U[-1, 1]``.
    """

    def __init__(self, categorical=(), continuous=0):
        categorical = tuple(int(k) for k in categorical)
        if any(k < 2 for k in categorical):
            raise ValueError(f"Each categorical code needs at least 2 values, got {categorical}.")
        if int(continuous) != continuous or continuous < 0:
            raise ValueError(f"continuous must be an integer >= 0, got {continuous!r}.")
        if not categorical and not continuous:
            raise ValueError("LatentCodes needs at least one categorical or continuous code.")
        self.categorical = categorical
        self.continuous = int(continuous)

    @classmethod
    def parse(cls, spec):
        """Codes from text such as ``"categorical:10,continuous:2"``.

        Each comma-separated item is ``categorical:K`` (one code with K
        values; repeat it for several) or ``continuous:M`` (M codes).
        """
        categorical, continuous = [], 0
        for item in filter(None, (part.strip() for part in str(spec).split(","))):
            kind, _, number = item.partition(":")
            try:
                value = int(number)
            except ValueError:
                value = None
            if kind not in ("categorical", "continuous") or value is None:
                raise ValueError(f"Bad InfoGAN code {item!r} in {spec!r}: expected items like "
                                 f"categorical:10 or continuous:2, separated by commas.")
            if kind == "categorical":
                categorical.append(value)
            else:
                continuous += value
        return cls(categorical, continuous)

    def __repr__(self):
        return f"LatentCodes(categorical={self.categorical}, continuous={self.continuous})"

    def __eq__(self, other):
        return (isinstance(other, LatentCodes) and self.categorical == other.categorical
                and self.continuous == other.continuous)

    def spec(self):
        """The text `parse` reads back."""
        items = [f"categorical:{k}" for k in self.categorical]
        if self.continuous:
            items.append(f"continuous:{self.continuous}")
        return ",".join(items)

    @property
    def dim(self):
        """Size of the codes' part of G's input (one-hot categorical plus continuous)."""
        return sum(self.categorical) + self.continuous

    q_dim = dim  # Q predicts one logit per categorical value and one mean per continuous code

    def sample(self, n, seed):
        """``(n, dim)`` codes drawn from their priors; a stateless function of ``seed``."""
        parts = []
        for i, k in enumerate(self.categorical):
            part_seed = tf.random.experimental.stateless_fold_in(seed, i)
            ids = tf.random.stateless_uniform(tf.stack([n]), part_seed, minval=0, maxval=k,
                                              dtype=tf.int32)
            parts.append(tf.one_hot(ids, k, dtype=tf.float32))
        if self.continuous:
            part_seed = tf.random.experimental.stateless_fold_in(seed, len(self.categorical))
            parts.append(tf.random.stateless_uniform(tf.stack([n, self.continuous]), part_seed,
                                                     minval=-1.0, maxval=1.0))
        return tf.concat(parts, axis=1)

    def sample_numpy(self, n, seed=None):
        """`sample` with NumPy's generator, for inference."""
        rng = np.random.default_rng(seed)
        parts = [np.eye(k, dtype=np.float32)[rng.integers(0, k, n)] for k in self.categorical]
        if self.continuous:
            parts.append(rng.uniform(-1.0, 1.0, (n, self.continuous)).astype(np.float32))
        return np.concatenate(parts, axis=1)

    def split(self, values):
        """``([categorical parts (B, k)], continuous part (B, m) or None)`` of a code-sized tensor."""
        sizes = list(self.categorical) + ([self.continuous] if self.continuous else [])
        parts = tf.split(values, sizes, axis=-1)
        continuous = parts.pop() if self.continuous else None
        return parts, continuous

    def penalty(self, codes, q):
        """Per-example mutual-information penalty of ``codes`` (as sampled) under Q's output ``q``."""
        code_cats, code_cont = self.split(tf.cast(codes, tf.float32))
        q_cats, q_cont = self.split(tf.cast(q, tf.float32))
        return losses.mutual_information_penalty(
            [tf.argmax(c, axis=-1, output_type=tf.int32) for c in code_cats], q_cats,
            code_cont, q_cont)

    def traversal(self, code, values, base):
        """Copies of the code rows ``base`` ``(n, dim)`` with one code set to each of ``values``.

        ``code`` indexes the categorical codes first, then the continuous ones.
        Returns ``(len(values), n, dim)``: row ``i`` sets the code to ``values[i]``
        (a category index, or a continuous value) and keeps everything else.
        """
        base = np.asarray(base, np.float32)
        out = np.repeat(base[None], len(values), axis=0)
        n_cat = len(self.categorical)
        if not 0 <= code < n_cat + self.continuous:
            raise ValueError(f"code {code} out of range: there are {n_cat} categorical and "
                             f"{self.continuous} continuous codes.")
        if code < n_cat:
            start = sum(self.categorical[:code])
            k = self.categorical[code]
            for i, v in enumerate(values):
                out[i, :, start:start + k] = np.eye(k, dtype=np.float32)[int(v)]
        else:
            column = sum(self.categorical) + code - n_cat
            for i, v in enumerate(values):
                out[i, :, column] = v
        return out
