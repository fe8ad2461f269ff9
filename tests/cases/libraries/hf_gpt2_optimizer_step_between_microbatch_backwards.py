# %%
import torch
from transformers import GPT2Config, GPT2LMHeadModel

torch.manual_seed(0)
config = GPT2Config(
    vocab_size=64, n_positions=32, n_embd=32, n_layer=2, n_head=2, bos_token_id=0, eos_token_id=0
)
model = GPT2LMHeadModel(config)
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

# %%
batch = torch.randint(0, 64, (4, 8))
losses = [model(chunk, labels=chunk).loss for chunk in batch.chunk(2)]
for loss in losses:
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
