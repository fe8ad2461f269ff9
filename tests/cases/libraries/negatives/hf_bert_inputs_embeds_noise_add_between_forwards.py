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
)
model = BertForMaskedLM(config)
noise_alpha = 5.0

# %%
input_ids = torch.randint(0, 64, (2, 8))
embeds = model.get_input_embeddings()(input_ids)
clean_loss = model(inputs_embeds=embeds, labels=input_ids).loss
scale = noise_alpha / (embeds.shape[1] * embeds.shape[2]) ** 0.5
embeds.add_(torch.empty_like(embeds).uniform_(-scale, scale))
noisy_loss = model(inputs_embeds=embeds, labels=input_ids).loss
(clean_loss + noisy_loss).backward()
