# %%
import torch
from transformers import GPT2Config, GPT2LMHeadModel

torch.manual_seed(0)
config = GPT2Config(
    vocab_size=64, n_positions=32, n_embd=32, n_layer=2, n_head=2, bos_token_id=0, eos_token_id=0
)
model = GPT2LMHeadModel(config)
temperature = 0.7

# %%
input_ids = torch.randint(0, 64, (2, 8))
out = model(input_ids, labels=input_ids)
next_token_probs = out.logits[:, -1].div_(temperature).softmax(-1)
out.loss.backward()
