"""mtl: one multilingual model for e-commerce query-category (QC) and query-item (QI) relevance.

Data flows file -> records (`mtl.data.records`) -> pairs and token ids (`mtl.data.pairs`) -> task data and batches
(`mtl.data.tasks`, `mtl.sampling`) -> model (`mtl.model`) -> training loop (`mtl.train`) -> metrics
(`mtl.metrics`, `mtl.evaluate`) -> TensorBoard (`mtl.logger`).
"""

__version__ = "0.1.0"
