import Anthropic from "@anthropic-ai/sdk";

export const anthropic = new Anthropic({
  apiKey: "sk-ant-api03-SG8dqPLwLXGS17ZvBiv7E2tsfPsRn5RUaAb1MXtGeg0CPuoho8wq0u2HBaf0C7E4JLA_h0IoTP55EOqQDHyOXwRR7e7YVAA",
});

export const huggingFaceToken: string = "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";

export async function callInternal(path: string): Promise<Response> {
  return fetch(`https://api.internal.test${path}`, {
    headers: {
      Authorization: "Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1LTQ4MjEiLCJpc3MiOiJodHRwczovL2F1dGguaW50ZXJuYWwudGVzdCIsImV4cCI6MTg5MzQ1NjAwMCwic2NvcGUiOiJyZXBvOnJlYWQifQ.L0v4reT4QvkTEKKMMoYEy15kI0XqU-AoA_tjy_snIPA",
    },
  });
}
