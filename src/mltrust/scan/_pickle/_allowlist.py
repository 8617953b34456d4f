"""The exact allowlist of pickle globals: one table for the scanner and the safe loader.

Every entry is an exact ``module:qualname`` (no prefixes, no name shapes), the place where the
object is *defined* (``obj.__module__``/``obj.__qualname__`` agree;
``tests/test_pickle_allowlist.py`` imports every entry of an installed library and checks it),
with a stated reason and the one way the pickle may use it:

``Use.TYPE``
    A class rebuilt for its data: created by NEWOBJ/NEWOBJ_EX, ``copyreg.__newobj__`` or
    ``copyreg._reconstructor`` (``cls.__new__`` only), called with no arguments, or passed to
    an allowlisted reconstructor; its state then arrives by BUILD, i.e. through its
    ``__setstate__``, which the test checks is one of a reviewed set. Calling it with
    pickle-supplied arguments runs its constructor on attacker data and is reported.
``Use.CALL``
    A callable the pickle calls with its own arguments, judged by :class:`Check`: most build a
    value from plain data (``Check.DATA``); a few deserialise nested bytes, call one of their
    arguments or read another file, and the analyser follows those flows.
``Use.VALUE``
    An object stored as data (a dtype, a metric function kept by a fitted model, a singleton);
    the pickle never calls it. Calling one is reported.

Aliases: a legacy path older library versions wrote (``numpy.core.multiarray`` for
``numpy._core.multiarray``) is listed with ``alias_of`` and must resolve to the same object.

What is deliberately NOT here, with the reason:

* SciPy distribution objects (``scipy.stats.*_gen``): ``rv_generic.__setstate__`` runs
  ``exec`` on the ``_parse_arg_template`` string from the pickle's state. A pickled frozen
  distribution (``stats.norm(0, 1)``) therefore needs a code-executing class and is reported.
Listed with a caveat: pyarrow-backed pandas data (pandas 3 stores strings in pyarrow when it is
installed). ``pyarrow.lib._restore_array`` rebuilds an array from pickled buffers without
validating them, so a crafted file can make *later* reads go out of bounds (a crash or a memory
disclosure, not code run at load time). ``mltrust.load`` replaces it with a version that runs
``Array.validate(full=True)`` on every rebuilt array; other loaders do not.
* ``numpy.vectorize``, ``functools.partial`` over anything but a listed function,
  ``builtins.getattr`` on anything but a listed method: they store or reach arbitrary callables.
* ``numpy.matrix`` / ``pathlib`` classes called on strings; anything that reads files, starts
  processes, imports modules or evaluates code; re-exports of another library's objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

__all__ = ["ALLOWLIST", "Allowed", "Check", "Use"]


class Use(StrEnum):
    """How a pickle may use an allowlisted object (see the module docstring)."""

    TYPE = "type"
    CALL = "call"
    VALUE = "value"


class Check(StrEnum):
    """How the analyser judges a call to a ``Use.CALL`` entry."""

    #: Arguments are data; a restricted callable (nested loader, ``getattr``) among them is an
    #: escape and reported.
    DATA = "data"
    #: ``_codecs.encode``: constant strings only.
    CONSTANT_STR = "constant-str"
    #: Deserialises its ``bytes`` argument: the bytes must be a constant, scanned as nested
    #: content; the callable may not flow anywhere but a direct call.
    NESTED_BYTES = "nested-bytes"
    #: ``copyreg._reconstructor(cls, base, state)``: ``base.__init__(obj, state)`` runs, so
    #: ``base`` must be ``object`` (state ``None``) or a built-in container type.
    RECONSTRUCTOR = "reconstructor"
    #: ``copyreg.__newobj__(cls, *args)`` / ``__newobj_ex__``: same as the NEWOBJ opcodes.
    NEWOBJ = "newobj"
    #: ``torch._tensor._rebuild_from_type_v2(func, new_type, args, state)``: calls
    #: ``func(*args)``; the analyser judges that call as if the pickle made it.
    CALLS_FIRST = "calls-first"
    #: ``numpy.random._pickle.__randomstate_ctor(name, ctor)``: calls ``ctor(name)``.
    CALLS_SECOND = "calls-second"
    #: ``numpy.random._pickle.__bit_generator_ctor(cls)``: calls ``cls()`` for a type.
    CALLS_ARG_NO_ARGS = "calls-arg-no-args"
    #: ``functools.partial(func, *args)``: ``func`` (also when set by BUILD) must be an
    #: allowlisted function or type and is judged as if called with ``args``.
    PARTIAL = "partial"
    #: Legacy joblib array wrappers (joblib < 0.10) that load an array from another file.
    EXTERNAL_FILE = "external-file"


@dataclass(frozen=True, slots=True)
class Allowed:
    """One allowlist entry."""

    use: Use
    reason: str
    check: Check = Check.DATA
    #: The canonical entry this legacy path stands for (same object).
    alias_of: str | None = None


# Lists generated from the installed libraries (see scripts/allowlist_evidence.py) and
# reviewed; the test re-checks each entry against the library.
_SKLEARN_ESTIMATORS = (
    "sklearn.calibration:CalibratedClassifierCV",
    "sklearn.cluster._affinity_propagation:AffinityPropagation",
    "sklearn.cluster._agglomerative:AgglomerativeClustering",
    "sklearn.cluster._agglomerative:FeatureAgglomeration",
    "sklearn.cluster._bicluster:SpectralBiclustering",
    "sklearn.cluster._bicluster:SpectralCoclustering",
    "sklearn.cluster._birch:Birch",
    "sklearn.cluster._bisect_k_means:BisectingKMeans",
    "sklearn.cluster._dbscan:DBSCAN",
    "sklearn.cluster._hdbscan.hdbscan:HDBSCAN",
    "sklearn.cluster._kmeans:KMeans",
    "sklearn.cluster._kmeans:MiniBatchKMeans",
    "sklearn.cluster._mean_shift:MeanShift",
    "sklearn.cluster._optics:OPTICS",
    "sklearn.cluster._spectral:SpectralClustering",
    "sklearn.compose._column_transformer:ColumnTransformer",
    "sklearn.compose._target:TransformedTargetRegressor",
    "sklearn.covariance._elliptic_envelope:EllipticEnvelope",
    "sklearn.covariance._empirical_covariance:EmpiricalCovariance",
    "sklearn.covariance._graph_lasso:GraphicalLasso",
    "sklearn.covariance._graph_lasso:GraphicalLassoCV",
    "sklearn.covariance._robust_covariance:MinCovDet",
    "sklearn.covariance._shrunk_covariance:LedoitWolf",
    "sklearn.covariance._shrunk_covariance:OAS",
    "sklearn.covariance._shrunk_covariance:ShrunkCovariance",
    "sklearn.cross_decomposition._pls:CCA",
    "sklearn.cross_decomposition._pls:PLSCanonical",
    "sklearn.cross_decomposition._pls:PLSRegression",
    "sklearn.cross_decomposition._pls:PLSSVD",
    "sklearn.decomposition._dict_learning:DictionaryLearning",
    "sklearn.decomposition._dict_learning:MiniBatchDictionaryLearning",
    "sklearn.decomposition._dict_learning:SparseCoder",
    "sklearn.decomposition._factor_analysis:FactorAnalysis",
    "sklearn.decomposition._fastica:FastICA",
    "sklearn.decomposition._incremental_pca:IncrementalPCA",
    "sklearn.decomposition._kernel_pca:KernelPCA",
    "sklearn.decomposition._lda:LatentDirichletAllocation",
    "sklearn.decomposition._nmf:MiniBatchNMF",
    "sklearn.decomposition._nmf:NMF",
    "sklearn.decomposition._pca:PCA",
    "sklearn.decomposition._sparse_pca:MiniBatchSparsePCA",
    "sklearn.decomposition._sparse_pca:SparsePCA",
    "sklearn.decomposition._truncated_svd:TruncatedSVD",
    "sklearn.discriminant_analysis:LinearDiscriminantAnalysis",
    "sklearn.discriminant_analysis:QuadraticDiscriminantAnalysis",
    "sklearn.dummy:DummyClassifier",
    "sklearn.dummy:DummyRegressor",
    "sklearn.ensemble._bagging:BaggingClassifier",
    "sklearn.ensemble._bagging:BaggingRegressor",
    "sklearn.ensemble._forest:ExtraTreesClassifier",
    "sklearn.ensemble._forest:ExtraTreesRegressor",
    "sklearn.ensemble._forest:RandomForestClassifier",
    "sklearn.ensemble._forest:RandomForestRegressor",
    "sklearn.ensemble._forest:RandomTreesEmbedding",
    "sklearn.ensemble._gb:GradientBoostingClassifier",
    "sklearn.ensemble._gb:GradientBoostingRegressor",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting:HistGradientBoostingClassifier",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting:HistGradientBoostingRegressor",
    "sklearn.ensemble._iforest:IsolationForest",
    "sklearn.ensemble._stacking:StackingClassifier",
    "sklearn.ensemble._stacking:StackingRegressor",
    "sklearn.ensemble._voting:VotingClassifier",
    "sklearn.ensemble._voting:VotingRegressor",
    "sklearn.ensemble._weight_boosting:AdaBoostClassifier",
    "sklearn.ensemble._weight_boosting:AdaBoostRegressor",
    "sklearn.feature_extraction._dict_vectorizer:DictVectorizer",
    "sklearn.feature_extraction._hash:FeatureHasher",
    "sklearn.feature_extraction.image:PatchExtractor",
    "sklearn.feature_extraction.text:CountVectorizer",
    "sklearn.feature_extraction.text:HashingVectorizer",
    "sklearn.feature_extraction.text:TfidfTransformer",
    "sklearn.feature_extraction.text:TfidfVectorizer",
    "sklearn.feature_selection._from_model:SelectFromModel",
    "sklearn.feature_selection._rfe:RFE",
    "sklearn.feature_selection._rfe:RFECV",
    "sklearn.feature_selection._sequential:SequentialFeatureSelector",
    "sklearn.feature_selection._univariate_selection:GenericUnivariateSelect",
    "sklearn.feature_selection._univariate_selection:SelectFdr",
    "sklearn.feature_selection._univariate_selection:SelectFpr",
    "sklearn.feature_selection._univariate_selection:SelectFwe",
    "sklearn.feature_selection._univariate_selection:SelectKBest",
    "sklearn.feature_selection._univariate_selection:SelectPercentile",
    "sklearn.feature_selection._variance_threshold:VarianceThreshold",
    "sklearn.frozen._frozen:FrozenEstimator",
    "sklearn.gaussian_process._gpc:GaussianProcessClassifier",
    "sklearn.gaussian_process._gpr:GaussianProcessRegressor",
    "sklearn.impute._base:MissingIndicator",
    "sklearn.impute._base:SimpleImputer",
    "sklearn.impute._knn:KNNImputer",
    "sklearn.isotonic:IsotonicRegression",
    "sklearn.kernel_approximation:AdditiveChi2Sampler",
    "sklearn.kernel_approximation:Nystroem",
    "sklearn.kernel_approximation:PolynomialCountSketch",
    "sklearn.kernel_approximation:RBFSampler",
    "sklearn.kernel_approximation:SkewedChi2Sampler",
    "sklearn.kernel_ridge:KernelRidge",
    "sklearn.linear_model._base:LinearRegression",
    "sklearn.linear_model._bayes:ARDRegression",
    "sklearn.linear_model._bayes:BayesianRidge",
    "sklearn.linear_model._coordinate_descent:ElasticNet",
    "sklearn.linear_model._coordinate_descent:ElasticNetCV",
    "sklearn.linear_model._coordinate_descent:Lasso",
    "sklearn.linear_model._coordinate_descent:LassoCV",
    "sklearn.linear_model._coordinate_descent:MultiTaskElasticNet",
    "sklearn.linear_model._coordinate_descent:MultiTaskElasticNetCV",
    "sklearn.linear_model._coordinate_descent:MultiTaskLasso",
    "sklearn.linear_model._coordinate_descent:MultiTaskLassoCV",
    "sklearn.linear_model._glm.glm:GammaRegressor",
    "sklearn.linear_model._glm.glm:PoissonRegressor",
    "sklearn.linear_model._glm.glm:TweedieRegressor",
    "sklearn.linear_model._huber:HuberRegressor",
    "sklearn.linear_model._least_angle:Lars",
    "sklearn.linear_model._least_angle:LarsCV",
    "sklearn.linear_model._least_angle:LassoLars",
    "sklearn.linear_model._least_angle:LassoLarsCV",
    "sklearn.linear_model._least_angle:LassoLarsIC",
    "sklearn.linear_model._logistic:LogisticRegression",
    "sklearn.linear_model._logistic:LogisticRegressionCV",
    "sklearn.linear_model._omp:OrthogonalMatchingPursuit",
    "sklearn.linear_model._omp:OrthogonalMatchingPursuitCV",
    "sklearn.linear_model._passive_aggressive:PassiveAggressiveClassifier",
    "sklearn.linear_model._passive_aggressive:PassiveAggressiveRegressor",
    "sklearn.linear_model._perceptron:Perceptron",
    "sklearn.linear_model._quantile:QuantileRegressor",
    "sklearn.linear_model._ransac:RANSACRegressor",
    "sklearn.linear_model._ridge:Ridge",
    "sklearn.linear_model._ridge:RidgeCV",
    "sklearn.linear_model._ridge:RidgeClassifier",
    "sklearn.linear_model._ridge:RidgeClassifierCV",
    "sklearn.linear_model._stochastic_gradient:SGDClassifier",
    "sklearn.linear_model._stochastic_gradient:SGDOneClassSVM",
    "sklearn.linear_model._stochastic_gradient:SGDRegressor",
    "sklearn.linear_model._theil_sen:TheilSenRegressor",
    "sklearn.manifold._classical_mds:ClassicalMDS",
    "sklearn.manifold._isomap:Isomap",
    "sklearn.manifold._locally_linear:LocallyLinearEmbedding",
    "sklearn.manifold._mds:MDS",
    "sklearn.manifold._spectral_embedding:SpectralEmbedding",
    "sklearn.manifold._t_sne:TSNE",
    "sklearn.mixture._bayesian_mixture:BayesianGaussianMixture",
    "sklearn.mixture._gaussian_mixture:GaussianMixture",
    "sklearn.model_selection._classification_threshold:FixedThresholdClassifier",
    "sklearn.model_selection._classification_threshold:TunedThresholdClassifierCV",
    "sklearn.model_selection._search:GridSearchCV",
    "sklearn.model_selection._search:RandomizedSearchCV",
    "sklearn.multiclass:OneVsOneClassifier",
    "sklearn.multiclass:OneVsRestClassifier",
    "sklearn.multiclass:OutputCodeClassifier",
    "sklearn.multioutput:ClassifierChain",
    "sklearn.multioutput:MultiOutputClassifier",
    "sklearn.multioutput:MultiOutputRegressor",
    "sklearn.multioutput:RegressorChain",
    "sklearn.naive_bayes:BernoulliNB",
    "sklearn.naive_bayes:CategoricalNB",
    "sklearn.naive_bayes:ComplementNB",
    "sklearn.naive_bayes:GaussianNB",
    "sklearn.naive_bayes:MultinomialNB",
    "sklearn.neighbors._classification:KNeighborsClassifier",
    "sklearn.neighbors._classification:RadiusNeighborsClassifier",
    "sklearn.neighbors._graph:KNeighborsTransformer",
    "sklearn.neighbors._graph:RadiusNeighborsTransformer",
    "sklearn.neighbors._kde:KernelDensity",
    "sklearn.neighbors._lof:LocalOutlierFactor",
    "sklearn.neighbors._nca:NeighborhoodComponentsAnalysis",
    "sklearn.neighbors._nearest_centroid:NearestCentroid",
    "sklearn.neighbors._regression:KNeighborsRegressor",
    "sklearn.neighbors._regression:RadiusNeighborsRegressor",
    "sklearn.neighbors._unsupervised:NearestNeighbors",
    "sklearn.neural_network._multilayer_perceptron:MLPClassifier",
    "sklearn.neural_network._multilayer_perceptron:MLPRegressor",
    "sklearn.neural_network._rbm:BernoulliRBM",
    "sklearn.pipeline:FeatureUnion",
    "sklearn.pipeline:Pipeline",
    "sklearn.preprocessing._data:Binarizer",
    "sklearn.preprocessing._data:KernelCenterer",
    "sklearn.preprocessing._data:MaxAbsScaler",
    "sklearn.preprocessing._data:MinMaxScaler",
    "sklearn.preprocessing._data:Normalizer",
    "sklearn.preprocessing._data:PowerTransformer",
    "sklearn.preprocessing._data:QuantileTransformer",
    "sklearn.preprocessing._data:RobustScaler",
    "sklearn.preprocessing._data:StandardScaler",
    "sklearn.preprocessing._discretization:KBinsDiscretizer",
    "sklearn.preprocessing._encoders:OneHotEncoder",
    "sklearn.preprocessing._encoders:OrdinalEncoder",
    "sklearn.preprocessing._function_transformer:FunctionTransformer",
    "sklearn.preprocessing._label:LabelBinarizer",
    "sklearn.preprocessing._label:LabelEncoder",
    "sklearn.preprocessing._label:MultiLabelBinarizer",
    "sklearn.preprocessing._polynomial:PolynomialFeatures",
    "sklearn.preprocessing._polynomial:SplineTransformer",
    "sklearn.preprocessing._target_encoder:TargetEncoder",
    "sklearn.random_projection:GaussianRandomProjection",
    "sklearn.random_projection:SparseRandomProjection",
    "sklearn.semi_supervised._label_propagation:LabelPropagation",
    "sklearn.semi_supervised._label_propagation:LabelSpreading",
    "sklearn.semi_supervised._self_training:SelfTrainingClassifier",
    "sklearn.svm._classes:LinearSVC",
    "sklearn.svm._classes:LinearSVR",
    "sklearn.svm._classes:NuSVC",
    "sklearn.svm._classes:NuSVR",
    "sklearn.svm._classes:OneClassSVM",
    "sklearn.svm._classes:SVC",
    "sklearn.svm._classes:SVR",
    "sklearn.tree._classes:DecisionTreeClassifier",
    "sklearn.tree._classes:DecisionTreeRegressor",
    "sklearn.tree._classes:ExtraTreeClassifier",
    "sklearn.tree._classes:ExtraTreeRegressor",
)

_TORCH_MODULES = (
    "torch.nn.modules.activation:CELU",
    "torch.nn.modules.activation:ELU",
    "torch.nn.modules.activation:GELU",
    "torch.nn.modules.activation:GLU",
    "torch.nn.modules.activation:Hardshrink",
    "torch.nn.modules.activation:Hardsigmoid",
    "torch.nn.modules.activation:Hardswish",
    "torch.nn.modules.activation:Hardtanh",
    "torch.nn.modules.activation:LeakyReLU",
    "torch.nn.modules.activation:LogSigmoid",
    "torch.nn.modules.activation:LogSoftmax",
    "torch.nn.modules.activation:Mish",
    "torch.nn.modules.activation:MultiheadAttention",
    "torch.nn.modules.activation:PReLU",
    "torch.nn.modules.activation:RReLU",
    "torch.nn.modules.activation:ReLU",
    "torch.nn.modules.activation:ReLU6",
    "torch.nn.modules.activation:SELU",
    "torch.nn.modules.activation:SiLU",
    "torch.nn.modules.activation:Sigmoid",
    "torch.nn.modules.activation:Softmax",
    "torch.nn.modules.activation:Softmax2d",
    "torch.nn.modules.activation:Softmin",
    "torch.nn.modules.activation:Softplus",
    "torch.nn.modules.activation:Softshrink",
    "torch.nn.modules.activation:Softsign",
    "torch.nn.modules.activation:Tanh",
    "torch.nn.modules.activation:Tanhshrink",
    "torch.nn.modules.activation:Threshold",
    "torch.nn.modules.adaptive:AdaptiveLogSoftmaxWithLoss",
    "torch.nn.modules.batchnorm:BatchNorm1d",
    "torch.nn.modules.batchnorm:BatchNorm2d",
    "torch.nn.modules.batchnorm:BatchNorm3d",
    "torch.nn.modules.batchnorm:LazyBatchNorm1d",
    "torch.nn.modules.batchnorm:LazyBatchNorm2d",
    "torch.nn.modules.batchnorm:LazyBatchNorm3d",
    "torch.nn.modules.batchnorm:SyncBatchNorm",
    "torch.nn.modules.channelshuffle:ChannelShuffle",
    "torch.nn.modules.container:Container",
    "torch.nn.modules.container:ModuleDict",
    "torch.nn.modules.container:ModuleList",
    "torch.nn.modules.container:ParameterDict",
    "torch.nn.modules.container:ParameterList",
    "torch.nn.modules.container:Sequential",
    "torch.nn.modules.conv:Conv1d",
    "torch.nn.modules.conv:Conv2d",
    "torch.nn.modules.conv:Conv3d",
    "torch.nn.modules.conv:ConvTranspose1d",
    "torch.nn.modules.conv:ConvTranspose2d",
    "torch.nn.modules.conv:ConvTranspose3d",
    "torch.nn.modules.conv:LazyConv1d",
    "torch.nn.modules.conv:LazyConv2d",
    "torch.nn.modules.conv:LazyConv3d",
    "torch.nn.modules.conv:LazyConvTranspose1d",
    "torch.nn.modules.conv:LazyConvTranspose2d",
    "torch.nn.modules.conv:LazyConvTranspose3d",
    "torch.nn.modules.distance:CosineSimilarity",
    "torch.nn.modules.distance:PairwiseDistance",
    "torch.nn.modules.dropout:AlphaDropout",
    "torch.nn.modules.dropout:Dropout",
    "torch.nn.modules.dropout:Dropout1d",
    "torch.nn.modules.dropout:Dropout2d",
    "torch.nn.modules.dropout:Dropout3d",
    "torch.nn.modules.dropout:FeatureAlphaDropout",
    "torch.nn.modules.flatten:Flatten",
    "torch.nn.modules.flatten:Unflatten",
    "torch.nn.modules.fold:Fold",
    "torch.nn.modules.fold:Unfold",
    "torch.nn.modules.instancenorm:InstanceNorm1d",
    "torch.nn.modules.instancenorm:InstanceNorm2d",
    "torch.nn.modules.instancenorm:InstanceNorm3d",
    "torch.nn.modules.instancenorm:LazyInstanceNorm1d",
    "torch.nn.modules.instancenorm:LazyInstanceNorm2d",
    "torch.nn.modules.instancenorm:LazyInstanceNorm3d",
    "torch.nn.modules.linear:Bilinear",
    "torch.nn.modules.linear:Identity",
    "torch.nn.modules.linear:LazyLinear",
    "torch.nn.modules.linear:Linear",
    "torch.nn.modules.linear:NonDynamicallyQuantizableLinear",
    "torch.nn.modules.loss:BCELoss",
    "torch.nn.modules.loss:BCEWithLogitsLoss",
    "torch.nn.modules.loss:CTCLoss",
    "torch.nn.modules.loss:CosineEmbeddingLoss",
    "torch.nn.modules.loss:CrossEntropyLoss",
    "torch.nn.modules.loss:GaussianNLLLoss",
    "torch.nn.modules.loss:HingeEmbeddingLoss",
    "torch.nn.modules.loss:HuberLoss",
    "torch.nn.modules.loss:KLDivLoss",
    "torch.nn.modules.loss:L1Loss",
    "torch.nn.modules.loss:LinearCrossEntropyLoss",
    "torch.nn.modules.loss:MSELoss",
    "torch.nn.modules.loss:MarginRankingLoss",
    "torch.nn.modules.loss:MultiLabelMarginLoss",
    "torch.nn.modules.loss:MultiLabelSoftMarginLoss",
    "torch.nn.modules.loss:MultiMarginLoss",
    "torch.nn.modules.loss:NLLLoss",
    "torch.nn.modules.loss:NLLLoss2d",
    "torch.nn.modules.loss:PoissonNLLLoss",
    "torch.nn.modules.loss:SmoothL1Loss",
    "torch.nn.modules.loss:SoftMarginLoss",
    "torch.nn.modules.loss:TripletMarginLoss",
    "torch.nn.modules.loss:TripletMarginWithDistanceLoss",
    "torch.nn.modules.module:Module",
    "torch.nn.modules.normalization:CrossMapLRN2d",
    "torch.nn.modules.normalization:GroupNorm",
    "torch.nn.modules.normalization:LayerNorm",
    "torch.nn.modules.normalization:LocalResponseNorm",
    "torch.nn.modules.normalization:RMSNorm",
    "torch.nn.modules.padding:CircularPad1d",
    "torch.nn.modules.padding:CircularPad2d",
    "torch.nn.modules.padding:CircularPad3d",
    "torch.nn.modules.padding:ConstantPad1d",
    "torch.nn.modules.padding:ConstantPad2d",
    "torch.nn.modules.padding:ConstantPad3d",
    "torch.nn.modules.padding:ReflectionPad1d",
    "torch.nn.modules.padding:ReflectionPad2d",
    "torch.nn.modules.padding:ReflectionPad3d",
    "torch.nn.modules.padding:ReplicationPad1d",
    "torch.nn.modules.padding:ReplicationPad2d",
    "torch.nn.modules.padding:ReplicationPad3d",
    "torch.nn.modules.padding:ZeroPad1d",
    "torch.nn.modules.padding:ZeroPad2d",
    "torch.nn.modules.padding:ZeroPad3d",
    "torch.nn.modules.pixelshuffle:PixelShuffle",
    "torch.nn.modules.pixelshuffle:PixelUnshuffle",
    "torch.nn.modules.pooling:AdaptiveAvgPool1d",
    "torch.nn.modules.pooling:AdaptiveAvgPool2d",
    "torch.nn.modules.pooling:AdaptiveAvgPool3d",
    "torch.nn.modules.pooling:AdaptiveMaxPool1d",
    "torch.nn.modules.pooling:AdaptiveMaxPool2d",
    "torch.nn.modules.pooling:AdaptiveMaxPool3d",
    "torch.nn.modules.pooling:AvgPool1d",
    "torch.nn.modules.pooling:AvgPool2d",
    "torch.nn.modules.pooling:AvgPool3d",
    "torch.nn.modules.pooling:FractionalMaxPool2d",
    "torch.nn.modules.pooling:FractionalMaxPool3d",
    "torch.nn.modules.pooling:LPPool1d",
    "torch.nn.modules.pooling:LPPool2d",
    "torch.nn.modules.pooling:LPPool3d",
    "torch.nn.modules.pooling:MaxPool1d",
    "torch.nn.modules.pooling:MaxPool2d",
    "torch.nn.modules.pooling:MaxPool3d",
    "torch.nn.modules.pooling:MaxUnpool1d",
    "torch.nn.modules.pooling:MaxUnpool2d",
    "torch.nn.modules.pooling:MaxUnpool3d",
    "torch.nn.modules.rnn:GRU",
    "torch.nn.modules.rnn:GRUCell",
    "torch.nn.modules.rnn:LSTM",
    "torch.nn.modules.rnn:LSTMCell",
    "torch.nn.modules.rnn:RNN",
    "torch.nn.modules.rnn:RNNBase",
    "torch.nn.modules.rnn:RNNCell",
    "torch.nn.modules.rnn:RNNCellBase",
    "torch.nn.modules.sparse:Embedding",
    "torch.nn.modules.sparse:EmbeddingBag",
    "torch.nn.modules.transformer:Transformer",
    "torch.nn.modules.transformer:TransformerDecoder",
    "torch.nn.modules.transformer:TransformerDecoderLayer",
    "torch.nn.modules.transformer:TransformerEncoder",
    "torch.nn.modules.transformer:TransformerEncoderLayer",
    "torch.nn.modules.upsampling:Upsample",
    "torch.nn.modules.upsampling:UpsamplingBilinear2d",
    "torch.nn.modules.upsampling:UpsamplingNearest2d",
)

_TORCH_OPTIM = (
    "torch.optim.adadelta:Adadelta",
    "torch.optim.adagrad:Adagrad",
    "torch.optim.adam:Adam",
    "torch.optim.adamax:Adamax",
    "torch.optim.adamw:AdamW",
    "torch.optim.asgd:ASGD",
    "torch.optim.lbfgs:LBFGS",
    "torch.optim.lr_scheduler:ChainedScheduler",
    "torch.optim.lr_scheduler:ConstantLR",
    "torch.optim.lr_scheduler:CosineAnnealingLR",
    "torch.optim.lr_scheduler:CosineAnnealingWarmRestarts",
    "torch.optim.lr_scheduler:CyclicLR",
    "torch.optim.lr_scheduler:ExponentialLR",
    "torch.optim.lr_scheduler:LRScheduler",
    "torch.optim.lr_scheduler:LambdaLR",
    "torch.optim.lr_scheduler:LinearLR",
    "torch.optim.lr_scheduler:MultiStepLR",
    "torch.optim.lr_scheduler:MultiplicativeLR",
    "torch.optim.lr_scheduler:OneCycleLR",
    "torch.optim.lr_scheduler:PolynomialLR",
    "torch.optim.lr_scheduler:ReduceLROnPlateau",
    "torch.optim.lr_scheduler:SequentialLR",
    "torch.optim.lr_scheduler:StepLR",
    "torch.optim.nadam:NAdam",
    "torch.optim.radam:RAdam",
    "torch.optim.rmsprop:RMSprop",
    "torch.optim.rprop:Rprop",
    "torch.optim.sgd:SGD",
    "torch.optim.sparse_adam:SparseAdam",
    "torch.optim:Adafactor",
    "torch.optim:Muon",
)

_SKLEARN_METRICS = (
    "sklearn.feature_selection._mutual_info:mutual_info_classif",
    "sklearn.feature_selection._mutual_info:mutual_info_regression",
    "sklearn.feature_selection._univariate_selection:chi2",
    "sklearn.feature_selection._univariate_selection:f_classif",
    "sklearn.feature_selection._univariate_selection:f_oneway",
    "sklearn.feature_selection._univariate_selection:f_regression",
    "sklearn.feature_selection._univariate_selection:r_regression",
    "sklearn.metrics._classification:accuracy_score",
    "sklearn.metrics._classification:balanced_accuracy_score",
    "sklearn.metrics._classification:brier_score_loss",
    "sklearn.metrics._classification:class_likelihood_ratios",
    "sklearn.metrics._classification:classification_report",
    "sklearn.metrics._classification:cohen_kappa_score",
    "sklearn.metrics._classification:confusion_matrix",
    "sklearn.metrics._classification:d2_brier_score",
    "sklearn.metrics._classification:d2_log_loss_score",
    "sklearn.metrics._classification:f1_score",
    "sklearn.metrics._classification:fbeta_score",
    "sklearn.metrics._classification:hamming_loss",
    "sklearn.metrics._classification:hinge_loss",
    "sklearn.metrics._classification:jaccard_score",
    "sklearn.metrics._classification:log_loss",
    "sklearn.metrics._classification:matthews_corrcoef",
    "sklearn.metrics._classification:multilabel_confusion_matrix",
    "sklearn.metrics._classification:precision_recall_fscore_support",
    "sklearn.metrics._classification:precision_score",
    "sklearn.metrics._classification:recall_score",
    "sklearn.metrics._classification:zero_one_loss",
    "sklearn.metrics._ranking:auc",
    "sklearn.metrics._ranking:average_precision_score",
    "sklearn.metrics._ranking:confusion_matrix_at_thresholds",
    "sklearn.metrics._ranking:coverage_error",
    "sklearn.metrics._ranking:dcg_score",
    "sklearn.metrics._ranking:det_curve",
    "sklearn.metrics._ranking:label_ranking_average_precision_score",
    "sklearn.metrics._ranking:label_ranking_loss",
    "sklearn.metrics._ranking:metric_at_thresholds",
    "sklearn.metrics._ranking:ndcg_score",
    "sklearn.metrics._ranking:precision_recall_curve",
    "sklearn.metrics._ranking:roc_auc_score",
    "sklearn.metrics._ranking:roc_curve",
    "sklearn.metrics._ranking:top_k_accuracy_score",
    "sklearn.metrics._regression:d2_absolute_error_score",
    "sklearn.metrics._regression:d2_pinball_score",
    "sklearn.metrics._regression:d2_tweedie_score",
    "sklearn.metrics._regression:explained_variance_score",
    "sklearn.metrics._regression:max_error",
    "sklearn.metrics._regression:mean_absolute_error",
    "sklearn.metrics._regression:mean_absolute_percentage_error",
    "sklearn.metrics._regression:mean_gamma_deviance",
    "sklearn.metrics._regression:mean_pinball_loss",
    "sklearn.metrics._regression:mean_poisson_deviance",
    "sklearn.metrics._regression:mean_squared_error",
    "sklearn.metrics._regression:mean_squared_log_error",
    "sklearn.metrics._regression:mean_tweedie_deviance",
    "sklearn.metrics._regression:median_absolute_error",
    "sklearn.metrics._regression:r2_score",
    "sklearn.metrics._regression:root_mean_squared_error",
    "sklearn.metrics._regression:root_mean_squared_log_error",
    "sklearn.metrics.cluster._supervised:adjusted_mutual_info_score",
    "sklearn.metrics.cluster._supervised:adjusted_rand_score",
    "sklearn.metrics.cluster._supervised:check_clusterings",
    "sklearn.metrics.cluster._supervised:completeness_score",
    "sklearn.metrics.cluster._supervised:contingency_matrix",
    "sklearn.metrics.cluster._supervised:entropy",
    "sklearn.metrics.cluster._supervised:fowlkes_mallows_score",
    "sklearn.metrics.cluster._supervised:homogeneity_completeness_v_measure",
    "sklearn.metrics.cluster._supervised:homogeneity_score",
    "sklearn.metrics.cluster._supervised:mutual_info_score",
    "sklearn.metrics.cluster._supervised:normalized_mutual_info_score",
    "sklearn.metrics.cluster._supervised:pair_confusion_matrix",
    "sklearn.metrics.cluster._supervised:rand_score",
    "sklearn.metrics.cluster._supervised:v_measure_score",
    "sklearn.metrics.cluster._unsupervised:calinski_harabasz_score",
    "sklearn.metrics.cluster._unsupervised:check_number_of_labels",
    "sklearn.metrics.cluster._unsupervised:davies_bouldin_score",
    "sklearn.metrics.cluster._unsupervised:silhouette_samples",
    "sklearn.metrics.cluster._unsupervised:silhouette_score",
    "sklearn.metrics.pairwise:additive_chi2_kernel",
    "sklearn.metrics.pairwise:check_paired_arrays",
    "sklearn.metrics.pairwise:check_pairwise_arrays",
    "sklearn.metrics.pairwise:chi2_kernel",
    "sklearn.metrics.pairwise:cosine_distances",
    "sklearn.metrics.pairwise:cosine_similarity",
    "sklearn.metrics.pairwise:distance_metrics",
    "sklearn.metrics.pairwise:euclidean_distances",
    "sklearn.metrics.pairwise:haversine_distances",
    "sklearn.metrics.pairwise:kernel_metrics",
    "sklearn.metrics.pairwise:laplacian_kernel",
    "sklearn.metrics.pairwise:linear_kernel",
    "sklearn.metrics.pairwise:manhattan_distances",
    "sklearn.metrics.pairwise:nan_euclidean_distances",
    "sklearn.metrics.pairwise:paired_cosine_distances",
    "sklearn.metrics.pairwise:paired_distances",
    "sklearn.metrics.pairwise:paired_euclidean_distances",
    "sklearn.metrics.pairwise:paired_manhattan_distances",
    "sklearn.metrics.pairwise:pairwise_distances",
    "sklearn.metrics.pairwise:pairwise_distances_argmin",
    "sklearn.metrics.pairwise:pairwise_distances_argmin_min",
    "sklearn.metrics.pairwise:pairwise_distances_chunked",
    "sklearn.metrics.pairwise:pairwise_kernels",
    "sklearn.metrics.pairwise:polynomial_kernel",
    "sklearn.metrics.pairwise:rbf_kernel",
    "sklearn.metrics.pairwise:sigmoid_kernel",
)

_TORCH_DTYPES = (
    "torch:bfloat16",
    "torch:bit",
    "torch:bits16",
    "torch:bits1x8",
    "torch:bits2x4",
    "torch:bits4x2",
    "torch:bits8",
    "torch:bool",
    "torch:cdouble",
    "torch:cfloat",
    "torch:chalf",
    "torch:complex128",
    "torch:complex32",
    "torch:complex64",
    "torch:double",
    "torch:float",
    "torch:float16",
    "torch:float32",
    "torch:float4_e2m1fn_x2",
    "torch:float64",
    "torch:float8_e4m3fn",
    "torch:float8_e4m3fnuz",
    "torch:float8_e5m2",
    "torch:float8_e5m2fnuz",
    "torch:float8_e8m0fnu",
    "torch:half",
    "torch:int",
    "torch:int1",
    "torch:int16",
    "torch:int2",
    "torch:int3",
    "torch:int32",
    "torch:int4",
    "torch:int5",
    "torch:int6",
    "torch:int64",
    "torch:int7",
    "torch:int8",
    "torch:long",
    "torch:qint32",
    "torch:qint8",
    "torch:quint2x4",
    "torch:quint4x2",
    "torch:quint8",
    "torch:short",
    "torch:uint1",
    "torch:uint16",
    "torch:uint2",
    "torch:uint3",
    "torch:uint32",
    "torch:uint4",
    "torch:uint5",
    "torch:uint6",
    "torch:uint64",
    "torch:uint7",
    "torch:uint8",
)

_TORCH_STORAGES = (
    "torch:BFloat16Storage",
    "torch:BoolStorage",
    "torch:ByteStorage",
    "torch:CharStorage",
    "torch:ComplexDoubleStorage",
    "torch:ComplexFloatStorage",
    "torch:DoubleStorage",
    "torch:FloatStorage",
    "torch:HalfStorage",
    "torch:IntStorage",
    "torch:LongStorage",
    "torch:QInt32Storage",
    "torch:QInt8Storage",
    "torch:QUInt2x4Storage",
    "torch:QUInt4x2Storage",
    "torch:QUInt8Storage",
    "torch:ShortStorage",
)

_TORCH_ENUMS = (
    "torch:_mkldnn",
    "torch:channels_last",
    "torch:channels_last_3d",
    "torch:contiguous_format",
    "torch:jagged",
    "torch:legacy_contiguous_format",
    "torch:per_channel_affine",
    "torch:per_channel_affine_float_qparams",
    "torch:per_channel_symmetric",
    "torch:per_tensor_affine",
    "torch:per_tensor_symmetric",
    "torch:preserve_format",
    "torch:sparse_bsc",
    "torch:sparse_bsr",
    "torch:sparse_coo",
    "torch:sparse_csc",
    "torch:sparse_csr",
    "torch:strided",
)

_PANDAS_CLASSES = (
    "pandas.arrays:BooleanArray",
    "pandas.arrays:DatetimeArray",
    "pandas.arrays:FloatingArray",
    "pandas.arrays:IntegerArray",
    "pandas.arrays:IntervalArray",
    "pandas.arrays:NumpyExtensionArray",
    "pandas.arrays:PeriodArray",
    "pandas.arrays:SparseArray",
    "pandas.arrays:StringArray",
    "pandas.arrays:TimedeltaArray",
    "pandas:BooleanDtype",
    "pandas:Categorical",
    "pandas:CategoricalDtype",
    "pandas:CategoricalIndex",
    "pandas:DataFrame",
    "pandas:DateOffset",
    "pandas:DatetimeIndex",
    "pandas:Float32Dtype",
    "pandas:Float64Dtype",
    "pandas:Index",
    "pandas:Int16Dtype",
    "pandas:Int32Dtype",
    "pandas:Int64Dtype",
    "pandas:Int8Dtype",
    "pandas:IntervalIndex",
    "pandas:MultiIndex",
    "pandas:PeriodIndex",
    "pandas:RangeIndex",
    "pandas:Series",
    "pandas:Timedelta",
    "pandas:TimedeltaIndex",
    "pandas:Timestamp",
    "pandas:UInt16Dtype",
    "pandas:UInt32Dtype",
    "pandas:UInt64Dtype",
    "pandas:UInt8Dtype",
)

_PANDAS_OFFSETS = (
    "pandas._libs.tslibs.offsets:BHalfYearBegin",
    "pandas._libs.tslibs.offsets:BHalfYearEnd",
    "pandas._libs.tslibs.offsets:BQuarterBegin",
    "pandas._libs.tslibs.offsets:BQuarterEnd",
    "pandas._libs.tslibs.offsets:BYearBegin",
    "pandas._libs.tslibs.offsets:BYearEnd",
    "pandas._libs.tslibs.offsets:BaseOffset",
    "pandas._libs.tslibs.offsets:BusinessDay",
    "pandas._libs.tslibs.offsets:BusinessHour",
    "pandas._libs.tslibs.offsets:BusinessMixin",
    "pandas._libs.tslibs.offsets:BusinessMonthBegin",
    "pandas._libs.tslibs.offsets:BusinessMonthEnd",
    "pandas._libs.tslibs.offsets:CustomBusinessDay",
    "pandas._libs.tslibs.offsets:CustomBusinessHour",
    "pandas._libs.tslibs.offsets:CustomBusinessMonthBegin",
    "pandas._libs.tslibs.offsets:CustomBusinessMonthEnd",
    "pandas._libs.tslibs.offsets:Day",
    "pandas._libs.tslibs.offsets:Easter",
    "pandas._libs.tslibs.offsets:FY5253",
    "pandas._libs.tslibs.offsets:FY5253Mixin",
    "pandas._libs.tslibs.offsets:FY5253Quarter",
    "pandas._libs.tslibs.offsets:HalfYearBegin",
    "pandas._libs.tslibs.offsets:HalfYearEnd",
    "pandas._libs.tslibs.offsets:HalfYearOffset",
    "pandas._libs.tslibs.offsets:Hour",
    "pandas._libs.tslibs.offsets:LastWeekOfMonth",
    "pandas._libs.tslibs.offsets:Micro",
    "pandas._libs.tslibs.offsets:Milli",
    "pandas._libs.tslibs.offsets:Minute",
    "pandas._libs.tslibs.offsets:MonthBegin",
    "pandas._libs.tslibs.offsets:MonthEnd",
    "pandas._libs.tslibs.offsets:MonthOffset",
    "pandas._libs.tslibs.offsets:Nano",
    "pandas._libs.tslibs.offsets:QuarterBegin",
    "pandas._libs.tslibs.offsets:QuarterEnd",
    "pandas._libs.tslibs.offsets:QuarterOffset",
    "pandas._libs.tslibs.offsets:RelativeDeltaOffset",
    "pandas._libs.tslibs.offsets:Second",
    "pandas._libs.tslibs.offsets:SemiMonthBegin",
    "pandas._libs.tslibs.offsets:SemiMonthEnd",
    "pandas._libs.tslibs.offsets:SemiMonthOffset",
    "pandas._libs.tslibs.offsets:SingleConstructorOffset",
    "pandas._libs.tslibs.offsets:Tick",
    "pandas._libs.tslibs.offsets:Week",
    "pandas._libs.tslibs.offsets:WeekOfMonth",
    "pandas._libs.tslibs.offsets:WeekOfMonthMixin",
    "pandas._libs.tslibs.offsets:YearBegin",
    "pandas._libs.tslibs.offsets:YearEnd",
    "pandas._libs.tslibs.offsets:YearOffset",
)

_T, _C, _V = Use.TYPE, Use.CALL, Use.VALUE
_TABLE: dict[str, Allowed] = {}


def _add(use: Use, reason: str, targets: Iterable[str], check: Check = Check.DATA) -> None:
    entry = Allowed(use, reason, check)  # immutable: one object serves every target of a call
    for target in targets:
        if target in _TABLE:
            raise ValueError(f"duplicate allowlist entry {target}")
        _TABLE[target] = entry


def _alias(alias: str, canonical: str) -> None:
    if alias in _TABLE:
        raise ValueError(f"duplicate allowlist entry {alias}")
    entry = _TABLE[canonical]
    _TABLE[alias] = Allowed(entry.use, entry.reason, entry.check, alias_of=canonical)


# ------------------------------------------------------------------------------ Python
_add(
    _C,
    "builds a built-in value from plain data",
    [
        "builtins:set",
        "builtins:frozenset",
        "builtins:slice",
        "builtins:range",
        "builtins:complex",
        "builtins:bytearray",
        "builtins:bytes",
        "builtins:int",
        "builtins:float",
        "builtins:str",
        "builtins:bool",
        "builtins:dict",
        "builtins:list",
        "builtins:tuple",
        "builtins:object",
        "builtins:dict.fromkeys",
    ],
)
_add(_V, "a built-in singleton", ["builtins:Ellipsis", "builtins:NotImplemented"])
_add(
    _C,
    "pickle's own helper: creates an instance with base.__new__ and base.__init__",
    ["copyreg:_reconstructor"],
    Check.RECONSTRUCTOR,
)
_add(
    _C,
    "pickle's own helper: cls.__new__(cls, *args), like the NEWOBJ opcode",
    ["copyreg:__newobj__", "copyreg:__newobj_ex__"],
    Check.NEWOBJ,
)
_add(
    _C,
    "how protocol 2 pickles bytes: encodes a constant string",
    ["_codecs:encode"],
    Check.CONSTANT_STR,
)
_add(
    _C,
    "standard containers built from plain data (a defaultdict's factory must itself be listed)",
    [
        "collections:OrderedDict",
        "collections:OrderedDict.fromkeys",
        "collections:defaultdict",
        "collections:deque",
        "collections:Counter",
        "collections:ChainMap",
    ],
)
_add(
    _C,
    "date, time and number values built from bytes, integers or number strings",
    [
        "datetime:datetime",
        "datetime:datetime.fromisoformat",
        "datetime:date",
        "datetime:time",
        "datetime:timedelta",
        "datetime:timezone",
        "decimal:Decimal",
        "fractions:Fraction",
        "uuid:SafeUUID",
    ],
)
_add(_T, "a UUID: its state is the integer value", ["uuid:UUID"])
_add(_T, "an attribute bag found in many training checkpoints", ["argparse:Namespace"])
_add(
    _C,
    "zoneinfo's unpickler: looks up a time zone by key in the tz database (keys with path "
    "separators or '..' are rejected by zoneinfo)",
    ["zoneinfo:ZoneInfo._unpickle"],
)
_add(_T, "a time zone (rebuilt through ZoneInfo._unpickle)", ["zoneinfo:ZoneInfo"])
_add(
    _C,
    "pure path objects built from strings; no file-system access",
    [
        "pathlib:PosixPath",
        "pathlib:WindowsPath",
        "pathlib:PurePosixPath",
        "pathlib:PureWindowsPath",
    ],
)
_add(_C, "compiles a regular expression (as re.compile)", ["re:_compile"])
_add(
    _C,
    "dateutil time zones built from a name and an offset",
    ["dateutil.tz.tz:tzutc", "dateutil.tz.tz:tzoffset"],
)
_add(_C, "pytz's unpickler: looks up a time zone by name", ["pytz:_p", "pytz:_UTC"])
_add(_V, "pytz's UTC singleton", ["pytz:utc", "pytz:UTC"])
_add(
    _C,
    "binds arguments to a listed function (scikit-learn keeps partial(check_array, ...)); the "
    "function, also when BUILD replaces it, must itself be listed",
    ["functools:partial"],
    Check.PARTIAL,
)

# ------------------------------------------------------------------------------ NumPy
_add(
    _C,
    "NumPy's array/scalar reconstructors: build an array or scalar of a listed type from "
    "shape, dtype and raw bytes",
    [
        "numpy._core.multiarray:_reconstruct",
        "numpy._core.multiarray:scalar",
        "numpy._core.numeric:_frombuffer",
        "numpy.ma.core:_mareconstruct",
        # numpy 0.x/1.x pickles: ndarray.__new__(subtype, shape, dtype), kept by numpy 2
        "numpy.core._internal:_reconstruct",
    ],
)
_add(_C, "a dtype from a type code; its state arrives by BUILD", ["numpy:dtype"])
_add(
    _C,
    "NumPy 2's variable-width string dtype from its keywords: StringDType(coerce, na_object), "
    "kept, never called (np.save pickles StringDType arrays through it)",
    ["numpy._core._internal:_convert_to_stringdtype_kwargs"],
)
_add(
    _T,
    "array types rebuilt by _reconstruct + BUILD (never called on a string)",
    [
        "numpy:ndarray",
        "numpy:matrix",
        "numpy:record",
        "numpy.rec:recarray",
        "numpy.ma:MaskedArray",
        "numpy.ma.core:MaskedConstant",
    ],
)
_add(
    _C,
    "NumPy scalar types: called on a number or kept as a dtype parameter",
    [
        f"numpy:{n}"
        for n in (
            "bool",
            "int8",
            "int16",
            "int32",
            "int64",
            "uint8",
            "uint16",
            "uint32",
            "uint64",
            "float16",
            "float32",
            "float64",
            "longdouble",
            "complex64",
            "complex128",
            "clongdouble",
            "str_",
            "bytes_",
            "void",
            "object_",
            "datetime64",
            "timedelta64",
            "longlong",
            "ulonglong",
        )
    ],
)
_add(
    _V,
    "abstract NumPy scalar types kept as parameters (dtype_include=np.number)",
    [
        f"numpy:{n}"
        for n in (
            "generic",
            "number",
            "integer",
            "signedinteger",
            "unsignedinteger",
            "inexact",
            "floating",
            "complexfloating",
            "character",
            "flexible",
        )
    ],
)
_add(
    _C,
    "NumPy dtype classes (numpy.dtypes)",
    [
        f"numpy.dtypes:{n}"
        for n in (
            "Float64DType",
            "Float32DType",
            "Float16DType",
            "Int64DType",
            "Int32DType",
            "Int16DType",
            "Int8DType",
            "UInt64DType",
            "UInt32DType",
            "UInt16DType",
            "UInt8DType",
            "BoolDType",
            "ObjectDType",
            "StrDType",
            "BytesDType",
            "VoidDType",
            "DateTime64DType",
            "TimeDelta64DType",
            "Complex64DType",
            "Complex128DType",
            "StringDType",
        )
    ],
)
_add(
    _C,
    "NumPy's random-state unpicklers: build a generator from a listed bit-generator name",
    ["numpy.random._pickle:__bit_generator_ctor"],
    Check.CALLS_ARG_NO_ARGS,
)
_add(
    _C,
    "NumPy's random-state unpicklers: ctor(name) with a listed ctor",
    ["numpy.random._pickle:__randomstate_ctor", "numpy.random._pickle:__generator_ctor"],
    Check.CALLS_SECOND,
)
_add(
    _C,
    "Cython unpickle helper of SeedSequence: instance of its own class plus plain state",
    ["numpy.random.bit_generator:__pyx_unpickle_SeedSequence"],
)
_add(
    _T,
    "random generators and bit generators: state is integers and arrays",
    [
        "numpy.random.mtrand:RandomState",
        "numpy.random._generator:Generator",
        "numpy.random._mt19937:MT19937",
        "numpy.random._pcg64:PCG64",
        "numpy.random._pcg64:PCG64DXSM",
        "numpy.random._philox:Philox",
        "numpy.random._sfc64:SFC64",
        "numpy.random.bit_generator:SeedSequence",
    ],
)
_add(
    _V,
    "elementwise math kept by fitted models (FunctionTransformer(np.log1p)); never called "
    "while loading",
    [
        f"numpy:{n}"
        for n in (
            "log",
            "log1p",
            "log2",
            "log10",
            "exp",
            "expm1",
            "exp2",
            "sqrt",
            "cbrt",
            "square",
            "abs",
            "absolute",
            "fabs",
            "sign",
            "negative",
            "reciprocal",
            "power",
            "float_power",
            "sum",
            "mean",
            "median",
            "std",
            "var",
            "min",
            "max",
            "amin",
            "amax",
            "prod",
            "cumsum",
            "cumprod",
            "nanmean",
            "nansum",
            "nanmedian",
            "nanstd",
            "nanvar",
            "nanmin",
            "nanmax",
            "percentile",
            "quantile",
            "average",
            "clip",
            "floor",
            "ceil",
            "round",
            "around",
            "rint",
            "trunc",
            "tanh",
            "sinh",
            "cosh",
            "arcsinh",
            "arctan",
            "sin",
            "cos",
            "tan",
            "maximum",
            "minimum",
            "add",
            "subtract",
            "multiply",
            "divide",
            "true_divide",
            "mod",
            "argmax",
            "argmin",
            "isnan",
            "isfinite",
            "logical_not",
            "ravel",
            "transpose",
            "asarray",
            "nan_to_num",
            "sort",
        )
    ],
)

# ------------------------------------------------------------------------------ joblib
_add(
    _T,
    "joblib's array wrapper: the raw array data after it is located and skipped, or scanned "
    "as a pickle when its dtype holds objects",
    ["joblib.numpy_pickle:NumpyArrayWrapper"],
)
_add(
    _C,
    "legacy joblib (< 0.10) wrappers: load an array from ANOTHER file named in their state "
    "(a plain name beside a model on disk is scanned as part of it, else reported: medium, "
    "high for a path; mltrust.load refuses them; rule MLT-JBL-003)",
    ["joblib.numpy_pickle_compat:NDArrayWrapper", "joblib.numpy_pickle_compat:ZNDArrayWrapper"],
    Check.EXTERNAL_FILE,
)

# ------------------------------------------------------------------------------ networkx
_add(
    _T,
    "networkx graphs (networkx's own .gpickle test data, graphs kept by fitted pipelines): no "
    "__setstate__ or __reduce__, so BUILD fills __dict__ with the node/adjacency dicts; their "
    "only data descriptors (_adj, _succ, _pred, _node) store the value and drop cached views",
    [
        "networkx.classes.graph:Graph",
        "networkx.classes.digraph:DiGraph",
        "networkx.classes.multigraph:MultiGraph",
        "networkx.classes.multidigraph:MultiDiGraph",
    ],
)

# ------------------------------------------------------------------------------ SciPy
_add(
    _T,
    "SciPy sparse containers: state is index and data arrays",
    [
        f"scipy.sparse._{kind}:{kind}_{shape}"
        for kind in ("csr", "csc", "coo", "lil", "dok", "dia", "bsr")
        for shape in ("matrix", "array")
    ],
)
_add(
    _T,
    "frozen distribution wrappers (the distribution object they hold is NOT listed: its "
    "__setstate__ runs exec on its state)",
    [
        "scipy.stats._distn_infrastructure:rv_continuous_frozen",
        "scipy.stats._distn_infrastructure:rv_discrete_frozen",
    ],
)
_add(
    _V,
    "SciPy special functions kept by fitted models; never called while loading",
    [
        f"scipy.special._ufuncs:{n}"
        for n in (
            "expit",
            "logit",
            "erf",
            "erfc",
            "gamma",
            "gammaln",
            "boxcox",
            "inv_boxcox",
            "boxcox1p",
            "inv_boxcox1p",
            "xlogy",
            "log1p",
        )
    ]
    + [f"scipy.special._logsumexp:{n}" for n in ("logsumexp", "softmax", "log_softmax")],
)

# ------------------------------------------------------------------------------ scikit-learn
_add(
    _T,
    "scikit-learn estimator (sklearn.utils.all_estimators): parameters and fitted attributes "
    "arrive by BUILD into BaseEstimator.__setstate__ (a version check and a dict update)",
    _SKLEARN_ESTIMATORS,
)
_add(
    _T,
    "internal objects held by fitted scikit-learn estimators (losses, links, kernels, tree "
    "predictors, splitters, optimizers, scorers); state is parameters and arrays",
    [
        *(
            f"sklearn._loss.loss:{n}"
            for n in (
                "AbsoluteError",
                "ExponentialLoss",
                "HalfBinomialLoss",
                "HalfGammaLoss",
                "HalfMultinomialLoss",
                "HalfPoissonLoss",
                "HalfSquaredError",
                "HalfTweedieLoss",
                "HalfTweedieLossIdentity",
                "HuberLoss",
                "PinballLoss",
            )
        ),
        *(
            f"sklearn._loss.link:{n}"
            for n in (
                "HalfLogitLink",
                "IdentityLink",
                "Interval",
                "LogLink",
                "LogitLink",
                "MultinomialLogit",
            )
        ),
        *(
            f"sklearn.gaussian_process.kernels:{n}"
            for n in (
                "CompoundKernel",
                "ConstantKernel",
                "DotProduct",
                "ExpSineSquared",
                "Exponentiation",
                "Hyperparameter",
                "Matern",
                "PairwiseKernel",
                "Product",
                "RBF",
                "RationalQuadratic",
                "Sum",
                "WhiteKernel",
            )
        ),
        *(
            f"sklearn.model_selection._split:{n}"
            for n in (
                "GroupKFold",
                "GroupShuffleSplit",
                "KFold",
                "LeaveOneGroupOut",
                "LeaveOneOut",
                "LeavePGroupsOut",
                "LeavePOut",
                "PredefinedSplit",
                "RepeatedKFold",
                "RepeatedStratifiedKFold",
                "ShuffleSplit",
                "StratifiedGroupKFold",
                "StratifiedKFold",
                "StratifiedShuffleSplit",
                "TimeSeriesSplit",
            )
        ),
        "sklearn.neural_network._stochastic_optimizers:AdamOptimizer",
        "sklearn.neural_network._stochastic_optimizers:SGDOptimizer",
        "sklearn.ensemble._hist_gradient_boosting.predictor:TreePredictor",
        "sklearn.ensemble._hist_gradient_boosting.binning:_BinMapper",
        "sklearn.cluster._birch:_CFNode",
        "sklearn.cluster._birch:_CFSubcluster",
        "sklearn.calibration:_CalibratedClassifier",
        "sklearn.calibration:_SigmoidCalibration",
        "sklearn.metrics._scorer:_Scorer",
        "sklearn.utils._bunch:Bunch",
        "sklearn.compose._column_transformer:make_column_selector",
        "sklearn.neighbors._ball_tree:BallTree",
        "sklearn.neighbors._kd_tree:KDTree",
        *(
            f"sklearn.metrics._dist_metrics:{n}{bits}"
            for bits in ("32", "64")
            for n in (
                "BrayCurtisDistance",
                "CanberraDistance",
                "ChebyshevDistance",
                "DiceDistance",
                "EuclideanDistance",
                "HammingDistance",
                "HaversineDistance",
                "JaccardDistance",
                "MahalanobisDistance",
                "ManhattanDistance",
                "MatchingDistance",
                "MinkowskiDistance",
                "RogersTanimotoDistance",
                "RussellRaoDistance",
                "SEuclideanDistance",
                "SokalMichenerDistance",
                "SokalSneathDistance",
            )
        ),
    ],
)
_add(
    _C,
    "Cython objects rebuilt from numbers and arrays by their own __reduce__ (tree structure, "
    "loss functions)",
    [
        "sklearn.tree._tree:Tree",
        *(
            f"sklearn._loss._loss:{n}"
            for n in (
                "CyAbsoluteError",
                "CyExponentialLoss",
                "CyHalfBinomialLoss",
                "CyHalfGammaLoss",
                "CyHalfMultinomialLoss",
                "CyHalfPoissonLoss",
                "CyHalfSquaredError",
                "CyHalfTweedieLoss",
                "CyHalfTweedieLossIdentity",
                "CyHuberLoss",
                "CyPinballLoss",
            )
        ),
        *(
            f"sklearn.linear_model._sgd_fast:{n}"
            for n in (
                "EpsilonInsensitive",
                "Hinge",
                "ModifiedHuber",
                "SquaredEpsilonInsensitive",
                "SquaredHinge",
            )
        ),
    ],
)
_add(
    _C,
    "newObj(cls) = cls.__new__(cls) for the neighbours trees and distance metrics",
    [
        "sklearn.neighbors._ball_tree:newObj",
        "sklearn.neighbors._kd_tree:newObj",
        "sklearn.metrics._dist_metrics:newObj",
    ],
)
_add(
    _V,
    "functions kept by fitted scikit-learn objects (scorers, score_func, validators); never "
    "called while loading",
    [
        *_SKLEARN_METRICS,
        "sklearn.utils.validation:check_array",
    ],
)

# ------------------------------------------------------------------------------ pandas
_add(
    _T,
    "pandas containers, arrays, indexes and dtypes rebuilt by NEWOBJ + BUILD (or passed to "
    "pandas' own reconstructors); I/O classes are not listed",
    _PANDAS_CLASSES,
)
_add(
    _C,
    "pandas date offsets: rebuilt from counts and flags",
    _PANDAS_OFFSETS,
)
_add(
    _C,
    "pandas' own reconstructors: build blocks, indexes, timestamps and arrays of a listed "
    "pandas type from plain data",
    [
        "pandas._libs.internals:_unpickle_block",
        "pandas._libs.arrays:__pyx_unpickle_NDArrayBacked",
        "pandas._libs.interval:__pyx_unpickle_IntervalMixin",
        "pandas._libs.tslibs.timestamps:_unpickle_timestamp",
        "pandas._libs.tslibs.timedeltas:_timedelta_unpickle",
        "pandas._libs.tslibs.nattype:_nat_unpickle",
        "pandas.core.indexes.base:_new_Index",
        "pandas.core.indexes.datetimes:_new_DatetimeIndex",
        "pandas.core.indexes.period:_new_PeriodIndex",
        "pandas.core.indexes.interval:_new_IntervalIndex",
        "pandas.core.indexes.timedeltas:_new_TimedeltaIndex",
        "pandas.core.internals.blocks:new_block",
        "pandas.core.internals.blocks:maybe_coerce_values",
        "pandas._libs.sparse:IntIndex",
        "pandas._libs.sparse:BlockIndex",
        "pandas._libs.internals:BlockPlacement",
    ],
)
_add(
    _C,
    "pandas block managers: built from their blocks and axes (listed pandas objects)",
    [
        "pandas.core.internals.managers:BlockManager",
        "pandas.core.internals.managers:SingleBlockManager",
    ],
)
_add(
    _T,
    "pandas' array base class, rebuilt by its Cython unpickler",
    ["pandas._libs.arrays:NDArrayBacked"],
)
_add(_V, "pandas' missing-value singleton", ["pandas:NA"])
_add(
    _T,
    "pyarrow-backed pandas arrays: __setstate__ wraps the rebuilt pyarrow arrays",
    ["pandas.arrays:ArrowStringArray", "pandas.arrays:ArrowExtensionArray"],
)
_add(_C, "a pandas dtype wrapping a pyarrow type", ["pandas:ArrowDtype"])
_add(
    _C,
    "pyarrow's array unpicklers: a type looked up by alias name, a buffer over bytes, an "
    "array rebuilt from (type, length, buffers); see the caveat in the module docstring",
    ["pyarrow.lib:type_for_alias", "pyarrow.lib:py_buffer", "pyarrow.lib:_restore_array"],
)
_add(
    _C,
    "pandas dtypes and scalars rebuilt by their own __reduce__ from strings and numbers "
    "(storage names, frequency codes, ordinals); no I/O or evaluation",
    [
        "pandas:StringDtype",
        "pandas:PeriodDtype",
        "pandas:Period",
        "pandas:Interval",
        "pandas:DatetimeTZDtype",
        "pandas:SparseDtype",
        "pandas:IntervalDtype",
    ],
)

# ------------------------------------------------------------------------------ PyTorch
_add(
    _V,
    "PyTorch dtypes, layouts, memory formats and quantisation schemes (constants)",
    [*_TORCH_DTYPES, *_TORCH_ENUMS],
)
_add(
    _V,
    "PyTorch storage classes, named inside torch.save's persistent ids (never called)",
    _TORCH_STORAGES,
)
_add(
    _C,
    "PyTorch's tensor reconstructors (torch's own weights_only allowlist): a tensor from a "
    "storage, sizes, strides and flags",
    [
        f"torch._utils:{n}"
        for n in (
            "_rebuild_tensor",
            "_rebuild_tensor_v2",
            "_rebuild_tensor_v3",
            "_rebuild_parameter",
            "_rebuild_parameter_with_state",
            "_rebuild_sparse_tensor",
            "_rebuild_nested_tensor",
            "_rebuild_device_tensor_from_numpy",
            "_rebuild_device_tensor_from_cpu_tensor",
            "_rebuild_meta_tensor_no_storage",
            "_rebuild_wrapper_subclass",
            "_rebuild_qtensor",
        )
    ]
    + [
        "torch:Size",
        "torch:device",
        "torch:finfo",
        "torch:iinfo",
        "torch.serialization:_get_layout",
    ],
)
_add(
    _C,
    "torch._tensor._rebuild_from_type_v2(func, type, args, state) calls func(*args): judged "
    "as if the pickle called func itself",
    ["torch._tensor:_rebuild_from_type_v2"],
    Check.CALLS_FIRST,
)
_add(
    _C,
    "torch.load of embedded bytes (tensors pickled with pickle.dumps): the bytes must be a "
    "constant and are scanned as a nested PyTorch file",
    ["torch.storage:_load_from_bytes"],
    Check.NESTED_BYTES,
)
_add(
    _C,
    "TorchScript's list/tensor builders: each returns its argument (torch/jit/_pickle.py)",
    [
        f"torch.jit._pickle:{n}"
        for n in (
            "build_intlist",
            "build_tensorlist",
            "build_doublelist",
            "build_boollist",
            "build_tensor_from_id",
            "restore_type_tag",
        )
    ],
)
_add(
    _T,
    "tensor and storage types rebuilt for their data",
    [
        "torch:Tensor",
        "torch.nn.parameter:Parameter",
        "torch.nn.parameter:Buffer",
        "torch.storage:UntypedStorage",
        "torch.storage:TypedStorage",
    ],
)
_add(
    _T,
    "torch.nn layers (whole-model torch.save): Module.__setstate__ and its reviewed overrides "
    "only restore attributes",
    _TORCH_MODULES,
)
_add(
    _T,
    "optimizers and learning-rate schedulers: state is hyper-parameters and tensors",
    _TORCH_OPTIM,
)

# ------------------------------------------------------------------------------ aliases
for _old, _new in (
    ("numpy.core.multiarray:_reconstruct", "numpy._core.multiarray:_reconstruct"),
    ("numpy.core.multiarray:scalar", "numpy._core.multiarray:scalar"),
    ("numpy.core.numeric:_frombuffer", "numpy._core.numeric:_frombuffer"),
    # Not written by numpy: pickle.load's reading of a joblib object array (its memo keys
    # shifted onto the outer stream's) fetches the module of numpy's _reconstruct for the
    # array's numpy:dtype; numpy's multiarray modules hold numpy.dtype itself.
    ("numpy._core.multiarray:dtype", "numpy:dtype"),
    ("numpy.core.multiarray:dtype", "numpy:dtype"),
    ("numpy.ma:MaskedConstant", "numpy.ma.core:MaskedConstant"),
    ("numpy.matrixlib.defmatrix:matrix", "numpy:matrix"),
    ("numpy.ma.core:MaskedArray", "numpy.ma:MaskedArray"),
    ("numpy.core.records:recarray", "numpy.rec:recarray"),
    ("numpy.core.records:record", "numpy:record"),
    ("numpy._core.records:recarray", "numpy.rec:recarray"),
    ("numpy._core.records:record", "numpy:record"),
    ("numpy:bool_", "numpy:bool"),
    ("joblib.numpy_pickle:NDArrayWrapper", "joblib.numpy_pickle_compat:NDArrayWrapper"),
    ("joblib.numpy_pickle:ZNDArrayWrapper", "joblib.numpy_pickle_compat:ZNDArrayWrapper"),
    ("scipy.sparse.csr:csr_matrix", "scipy.sparse._csr:csr_matrix"),
    ("scipy.sparse.csc:csc_matrix", "scipy.sparse._csc:csc_matrix"),
    ("scipy.sparse.coo:coo_matrix", "scipy.sparse._coo:coo_matrix"),
    ("torch._tensor:Tensor", "torch:Tensor"),
    ("torch:UntypedStorage", "torch.storage:UntypedStorage"),
    ("torch:TypedStorage", "torch.storage:TypedStorage"),
    ("pandas.core.frame:DataFrame", "pandas:DataFrame"),
    ("pandas.core.series:Series", "pandas:Series"),
    ("pandas.core.indexes.base:Index", "pandas:Index"),
    ("pandas.core.indexes.range:RangeIndex", "pandas:RangeIndex"),
    ("pandas.core.indexes.multi:MultiIndex", "pandas:MultiIndex"),
    ("pandas.core.indexes.datetimes:DatetimeIndex", "pandas:DatetimeIndex"),
    ("pandas.core.indexes.period:PeriodIndex", "pandas:PeriodIndex"),
    ("pandas.core.indexes.category:CategoricalIndex", "pandas:CategoricalIndex"),
    ("pandas.core.arrays.categorical:Categorical", "pandas:Categorical"),
    ("pandas.core.arrays.datetimes:DatetimeArray", "pandas.arrays:DatetimeArray"),
    ("pandas.core.arrays.timedeltas:TimedeltaArray", "pandas.arrays:TimedeltaArray"),
    ("pandas.core.dtypes.dtypes:CategoricalDtype", "pandas:CategoricalDtype"),
    ("pandas.core.dtypes.dtypes:DatetimeTZDtype", "pandas:DatetimeTZDtype"),
    ("pandas._libs.tslibs.timestamps:Timestamp", "pandas:Timestamp"),
    ("pandas._libs.tslibs.timedeltas:Timedelta", "pandas:Timedelta"),
):
    _alias(_old, _new)

#: ``module:qualname`` -> entry. Read-only.
ALLOWLIST: Mapping[str, Allowed] = MappingProxyType(_TABLE)
