# Timelines of what is heard and seen when: a trained model parses videos into NAME.json, NAME.html and
# NAME.png each, with an index.html. The demo parses a few of its test videos with its own main model; the
# `parse:` section of config.yaml names a folder of new videos and a checkpoint (or a dataset's model).


rule parse_demo_videos:
    input:
        model=main_model,
        videos=demo_parse_videos,
    output:
        report(
            "results/{dataset}/parsed/index.html",
            caption="../report/parsed.rst",
            category="Parsed videos",
            labels={"dataset": "{dataset}", "result": "timelines of test videos"},
        ),
    log:
        "results/{dataset}/logs/parse.log",
    benchmark:
        "results/{dataset}/benchmarks/parse.tsv"
    wildcard_constraints:
        dataset=any_of(DEMO_DATASETS),
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        output_dir="results/{dataset}/parsed",
    shell:
        "ecma parse --quiet --keep-going --checkpoint {input.model}"
        " --output-dir {params.output_dir} -- {input.videos:q} > {log} 2>&1"


rule parse_new_videos:
    input:
        model=parse_checkpoint,
        videos=parse_video_files,
    output:
        "results/parse/index.html",
    log:
        "results/parse/logs/parse.log",
    benchmark:
        "results/parse/benchmarks/parse.tsv"
    conda:
        ENV
    threads: 4
    resources:
        mem_mb=8000,
        runtime=240,
        gpu=gpus_for_parse,
    shell:
        "ecma parse --quiet --keep-going --checkpoint {input.model}"
        " --output-dir results/parse -- {input.videos:q} > {log} 2>&1"
