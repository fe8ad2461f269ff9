# %%
import torch
from transformers import BertConfig, BertForSequenceClassification

torch.manual_seed(0)
config = BertConfig(
    vocab_size=64,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=32,
    num_labels=3,
    problem_type="multi_label_classification",
)
model = BertForSequenceClassification(config)
temperature = 2.0

# %%
input_ids = torch.randint(0, 64, (2, 8))
labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
out = model(input_ids, labels=labels)
probs = out.logits.div_(temperature).sigmoid()
out.loss.backward()
