/// What `leakless init` writes: the default pipeline on the builtin backend, with the model
/// backends a user may have, commented out. Its data paths are found beside the file or in the
/// installed share folder.
public enum StarterPipeline {
    public static let text = """
        # A leakless pipeline. `leakless run --pipeline pipeline.yaml` runs it; `leakless stages`
        # lists every stage's parameters. Paths (data/, stages/) are looked for beside this file,
        # then in the installed share folder.
        workdir: out

        backends:
          builtin:
            kind: builtin
          # An OpenAI-compatible chat endpoint (OpenAI, vLLM, SGLang, Ollama, llama.cpp, LM Studio):
          # gpt:
          #   kind: openai-chat
          #   base_url: https://api.openai.com/v1
          #   api_key_env: OPENAI_API_KEY      # the variable's NAME, never the key
          #   model: gpt-4o
          #   price_prompt: 2.5                # USD per million tokens, for the budget and --dry-run
          #   price_completion: 10
          # A local vision model under vLLM:
          # qwen:
          #   kind: openai-chat
          #   base_url: http://localhost:8000/v1
          #   model: Qwen/Qwen2-VL-72B-Instruct
          # Stable Diffusion WebUI (AUTOMATIC1111, Forge) for the image stage:
          # sd:
          #   kind: sd-webui
          #   base_url: http://localhost:7860
          # Llama Guard, a reference judge for `leakless audit --judge guard`:
          # guard:
          #   kind: llamaguard
          #   base_url: http://localhost:8001/v1
          #   model: meta-llama/Llama-Guard-3-8B

        # budget: {usd: 20}                   # kept per workdir across runs

        stages:
          extract:
            backend: builtin                   # or gpt
            taxonomy: data/taxonomy.yaml
            queries_per_element: 3
          rewrite:
            backend: builtin
          detect:
            backend: builtin
            lexicon: data/lexicon.yaml
          image:
            backend: builtin                   # or sd, with prompt_writer: gpt and verifier: gpt
            pool: data/pool
            clipart: /usr/share/openclipart    # Debian's openclipart-svg/-png; "" for photos only
            fallback: typography               # no picture matches: the key phrase drawn as text
          filter:
            backend: builtin
          dedup:
            max_queries_per_image: 12
          export:
            format: vlsbench                   # or imagefolder

        """
}
