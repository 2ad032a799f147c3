# OpenSearch 2.19.1 (the version `ksearch opensearch start` runs locally) with Korean analysis.
# The official image already ships the security, k-NN and neural-search plugins; analysis-nori is added here.
FROM opensearchproject/opensearch:2.19.1
RUN /usr/share/opensearch/bin/opensearch-plugin install --batch analysis-nori
