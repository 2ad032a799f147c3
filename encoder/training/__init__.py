"""Training a Korean SPLADE encoder: vocabulary, Kiwi expansion teacher, contrastive fine-tuning."""
