"""Four backdoor defences in torch: activation clustering, spectral signatures, fine-pruning, Neural Cleanse.

Each lives in a module of its own; every function takes tensors (or a model and tensors) and returns tensors or
a dict of them:

- activation clustering (Chen et al., 2018): per class, project penultimate activations on a few
  principal components, split them in two with 2-means; a backdoored class splits into "clean"
  and "poisoned", far apart (high silhouette), the poisoned cluster being the smaller one;
- spectral signatures (Tran et al., 2018): per class, score each sample by its squared projection
  on the top singular vector of the centred representations; poisoned samples score highest, and every
  class gives up its top-scoring 1.5 × (the defender's bound on the poisons);
- fine-pruning (Liu et al., 2018): switch off the last convolution's channels that stay dormant on
  clean data, then fine-tune on clean data;
- Neural Cleanse (Wang et al., 2019): for every class, find the smallest mask and pattern that send
  clean images to it; the backdoor's target needs a far smaller mask than the others.
"""

from badnets_utils.defences.cleanse import anomaly_index, reverse_engineer_triggers
from badnets_utils.defences.clustering import activation_clustering
from badnets_utils.defences.features import pca, penultimate_features, precision_recall, silhouette, two_means
from badnets_utils.defences.pruning import channel_activity, prune_dormant_channels, pruning_curve
from badnets_utils.defences.spectral import spectral_scores, spectral_signatures

__all__ = [
    "activation_clustering", "anomaly_index", "channel_activity", "pca", "penultimate_features", "precision_recall",
    "prune_dormant_channels", "pruning_curve", "reverse_engineer_triggers", "silhouette", "spectral_scores",
    "spectral_signatures", "two_means",
]  # fmt: skip
