# %%
import torch
from transformers import BertConfig, BertForMaskedLM

torch.manual_seed(0)
config = BertConfig(
    vocab_size=64,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    max_position_embeddings=32,
    attn_implementation="eager",
)
model = BertForMaskedLM(config)
head_mask = torch.tensor([1.0, 0.0]).view(1, 2, 1, 1)


def prune_heads(module, inputs, output):
    _, attn_weights = output
    attn_weights.mul_(head_mask)


model.bert.encoder.layer[1].attention.self.register_forward_hook(prune_heads)

# %%
input_ids = torch.randint(0, 64, (2, 8))
out = model(input_ids, labels=input_ids)
out.loss.backward()
