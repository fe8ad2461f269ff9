# %%
import torch
from transformers import BertConfig, BertModel

torch.manual_seed(0)
config = BertConfig(
    vocab_size=64,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=32,
)
encoder = BertModel(config, add_pooling_layer=False)
classifier = torch.nn.Linear(32, 2)

# %%
input_ids = torch.randint(0, 64, (2, 8))
attention_mask = torch.tensor([[1, 1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1, 1, 1]])
out = encoder(input_ids, attention_mask=attention_mask)
hidden = out.last_hidden_state
hidden *= attention_mask.unsqueeze(-1)
mean_pooled = hidden.sum(1) / attention_mask.sum(1, keepdim=True)
logits = classifier(mean_pooled)
loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1]))
loss.backward()
