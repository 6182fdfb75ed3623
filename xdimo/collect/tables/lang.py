"""The words of the tables and plots: Chinese as the user writes them (the default), and English (``--lang en``).

Every layer of collect may import this module (a run's notes are made where a run is read: note()); it imports
nothing of xdimo."""

from __future__ import annotations

from typing import Any

LANGS = ("zh", "en")

TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "tbd": "待填",
        "no_base_hw": "待填(缺{hw}基准)",
        "no_base_n": "待填(缺{n}卡基准)",
        "baseline": "1.0(基准)",
        "no_base_unknown_hw": "待填(硬件未知)",
        "single": "单卡",
        "one_node": "{p} 单机",
        "n_nodes": "{p} {n}机",
        "na": "—",
        "logged": "日志 {v}",
        "active": "激活 {v}",
        "dense": "无MoE",
        "experts": "{n} experts, top_k={k}",
        "sep": "；",
        "per_gpu": "TFLOPs/卡",
        "t1_title": "表一-{letter}：{hw}",
        "t1_cols": "模型|卡数|并行方式|Steps/s|Samples/s|MFU|完成 10k steps 耗时(s)|加速比(按Samples/s)|理想加速比|"
                   "并行效率(%)",
        "t2_title": "表二：不同模型结构与规模（{setting}）",
        "t2_cols": "模型代号|结构/配置|具体参数(参数量与关键结构)|MFU|Steps/Sec|收敛步数|FFS FVD",
        "hw_title": "结果汇总表（{gpus} 卡，{model}）",
        "hw_cols": "硬件|模型参数|显存占用|硬件浮点峰值|token/样本吞吐量|MFU(浮点利用率)|加速比",
        "cost_title": "成本对比（{model}，{hw}，{steps} 步）",
        "cost_cols": "配置|机器数|总GPU|训练时间({steps}步)|GPU小时数|相对成本|每小时步数|本次实测GPU小时",
        "note_t1_derived": "Samples/s = 稳态 Steps/s × global batch（每卡 batch × 卡数 × 梯度累积；global batch "
                           "未知时取日志所记 Samples/s）；完成 10k steps 耗时(s) = 10,000 ÷ 稳态 Steps/s，"
                           "按稳态速度推算，非实测（不含启动、预热与评估）。",
        "note_throughput": "token/样本吞吐量：samples/s = 稳态 Steps/s × global batch（全部卡）；"
                           "tokens/s = samples/s × 每样本 {tokens:,} 个 token（{frames} 帧 × ({size}÷8÷patch {patch})² "
                           "= {frames} × {per_frame}，按模型与片段形状计算，非日志所记）。",
        "note_throughput_logged": "token/样本吞吐量：samples/s = 稳态 Steps/s × global batch（全部卡）；tokens/s 为日志"
                                  "所记的稳态值（本模型的每样本 token 数未知）。",
        "note_params": "模型参数 = 按模型配置精确计算的全部参数（MoE 计全部专家，含固定的 sin-cos 位置/时间嵌入）。",
        "note_steady": "稳态取值：排除预热区间后取中位数；波动 = (P90−P10)/中位数，超过 {wide} 标 ⚠。",
        "note_row": "{cards} `{run}`：{n} 个区间（除去预热 {w} 个），波动 {spread}{flag}",
        "note_row_state": "{cards} `{run}`：暂无指标（状态 {state}）",
        "note_row_warmup": "{cards} `{run}`：仅有预热区间（{w} 个），尚无稳态数据：不作基准，不计加速比与 MFU"
                           "（Steps/s 栏括号内为最后一个预热区间的读数，仅供参考）",
        "warmup_only": "待填(仅预热 {v})",
        "runs_warmup": "仅有预热区间（{w} 个），尚无稳态数据",
        "note_rerun": "{cards} `{run}`：与基准 `{base}` 同为 {n} 卡（重复运行），不是扩展点，加速比与并行效率记为 —。",
        "note_superlinear": "{cards} `{run}`：并行效率 {eff} 超过 100%（超线性，可能但少见）：请核对它与基准 `{base}` "
                            "的 batch、稳态区间与硬件。",
        "note_wide": " ⚠ 波动大",
        "note_doubtful_base": "基准 {cards} `{run}` 存疑（{why}）：以它为基准算得的数值（加速比、并行效率等）标 ⚠，"
                              "仅供参考；该负载没有正常结束（DONE）、稳态多于 1 个区间且独占 CPU 核的 {n} 卡运行可作"
                              "基准。",
        "doubt_state": "状态 {state}，未确认正常结束",
        "doubt_contended": "与其他运行同时在本机 CPU 上训练，吞吐偏低",
        "doubt_one_interval": "稳态数据只有 1 个区间，无从判断是否已稳定",
        "doubt_sep": "；",
        "note_mfu": "MFU = samples/s × 每样本训练 FLOPs ÷ (卡数 × 所用精度的稠密峰值)，不截断。",
        "note_peak": "{gpu}：{prec} 峰值 {peak} TFLOP/s",
        "note_cpu": "CPU 运行无 GPU 峰值，MFU 记为 —。",
        "note_no_peak_prec": "{hw} 没有 {prec} 张量核心，无 {prec} 峰值：MFU 记为 —。",
        "note_no_peak_hw": "{hw} 的峰值未知（xdimo/hardware.py 没有这块 GPU 的峰值，run.json 的 peak_tflops 为 "
                           "null）：MFU 无法计算，记为待填。",
        "note_legacy_mfu": "括号内为原日志自报的 MFU（按 FP32 峰值、乘加计数、截断在 100% 算得），仅供对照。",
        "note_speedup": "加速比 = 本配置 Samples/s ÷ 同硬件同模型 1 卡 Samples/s（迭代相同数据量）；"
                        "理想加速比 = 卡数；并行效率 = 加速比 ÷ 理想加速比。",
        "note_s2": "用户原表 S/2 行的“75.14M；无MoE”实为 S/2 每块 4 个专家的 MoE（全部专家计入）= 75,140,000；"
                   "稠密 S/2 为 {dense}（含固定的 sin-cos 位置/时间嵌入）。本表 S/2 行是稠密 S/2；S/2 4E2A "
                   "只在本设置有它的运行时另列一行。",
        "note_eval": "收敛步数、FFS FVD 在评估运行后（logs/<run>/eval.json）填入。",
        "note_hw": "加速比以 {hw} 为 1.0（按 Samples/s）；峰值为所用精度的稠密峰值。",
        "note_cost": "训练时间 = {steps} ÷ 稳态 Steps/s（按稳态速度推算，非实测）；GPU小时数 = 总GPU × 训练时间；"
                     "相对成本 = GPU小时数 ÷ 基准行的 GPU小时数，以 {base} 为 1.00x(基准)；每小时步数 = 稳态 Steps/s × "
                     "3600；本次实测 GPU小时 = 总GPU × 作业实际墙钟时间。",
        "cost_base": "1.00x(基准)",
        "note_run": "`{run}`：{note}",
        "note_no_base_workload": "{cards} `{run}`：同硬件同模型的 {n} 卡运行与本配置的 {fields} 不同，不作基准。",
        # Table 1's baseline holds the local batch fixed too (seed 000: 相同 batch 设置).
        "note_no_base_batch": "{cards} `{run}`：每卡 batch={batch} 没有 {n} 卡运行；同硬件同负载的其他运行是 "
                              "bs={have}，不跨 batch 比较，加速比与并行效率待填。",
        "note_base_batch": "1 卡基准须与本配置同每卡 batch（local batch）与梯度累积步数（即“相同 batch 设置”）、"
                           "同精度、同帧数与分辨率、同模型形状（depth/hidden/heads）；没有这样的 1 卡运行，"
                           "加速比与并行效率待填，表下注明原因，不跨 batch 比较。",
        "note_base_batch_n": "基准须与本配置同每卡 batch（local batch）与梯度累积步数、同精度、同帧数与分辨率、"
                             "同模型形状（depth/hidden/heads）；没有这样的基准运行，加速比与并行效率待填，"
                             "表下注明原因，不跨 batch 比较。",
        # A workload whose speedups are against a run of more than one card (no 1-card run, or --baseline-gpus).
        "note_speedup_n": "加速比 = 本配置 Samples/s ÷ 同硬件同模型基准运行的 Samples/s（迭代相同数据量）；"
                          "理想加速比 = 卡数 ÷ 基准卡数；并行效率 = 加速比 ÷ 理想加速比。",
        "note_base_n": "{model} 以 {base} 为基准（{why}）：加速比 = 本配置 Samples/s ÷ 该 {n} 卡运行 Samples/s，"
                       "理想加速比 = 卡数 ÷ {n}，并行效率 = 加速比 ÷ 理想加速比，均相对 {n} 卡基准，不是相对 1 卡。",
        "why_fewest": "该负载没有 1 卡运行，取卡数最少的运行",
        "why_forced": "--baseline-gpus {n}",
        "note_base_missing": "{model}：没有 {n} 卡运行（--baseline-gpus {n}），加速比与并行效率待填。",
        "base_sep": "、",
        # Seed 004's 相比N卡（基准） table after a cost table whose baseline is more than one card.
        "cmp_title": "相比{n}卡（基准）（{model}，{hw}）",
        "cmp_eff_cols": "配置|加速比|时间节省|成本增加|并行效率",
        "note_cmp_eff": "以 {base} 为基准，按相同数据量比较（同表一）：加速比 = Samples/s ÷ 基准 Samples/s；"
                        "时间节省 = 1 − 1/加速比；成本增加 = (卡数 ÷ {n}) ÷ 加速比 − 1（相同数据量所需 GPU 小时"
                        "比基准多出的比例）；并行效率 = 加速比 ÷ (卡数 ÷ {n}) = 1 ÷ (1 + 成本增加)，基准为 100%。"
                        "原表的“性价比”星级是主观评价，没有定义，本表不计算：多花的成本换来多少加速，"
                        "请据加速比与成本增加自行权衡。",
        "note_cmp_batch": "各配置 global_batch 不同：本表按相同数据量比较，上表的训练时间与相对成本按相同步数，"
                          "两者不同。",
        # Rows of another local batch than the baseline's (seed 000's 相同 batch 设置 holds here too).
        "note_cmp_batch_base": "{rows}：每卡 batch={batch}，以同 batch 的 {base} 为基准，不跨 batch 比较。",
        "note_cmp_no_batch": "{cards} `{run}`：每卡 batch={batch} 没有 {n} 卡运行（基准是 bs={have}），不跨 batch "
                             "比较，本行比较待填。",
        "note_cmp_missing": "没有 {n} 卡运行（--baseline-gpus {n}）：比较待填。",
        "note_cost_nobase": "训练时间 = {steps} ÷ 稳态 Steps/s（按稳态速度推算，非实测）；GPU小时数 = 总GPU × "
                            "训练时间；每小时步数 = 稳态 Steps/s × 3600；本次实测 GPU小时 = 总GPU × 作业实际墙钟时间。",
        # Runs whose hardware is unknown (a legacy log without the scheduler's summary naming its queue).
        "note_unknown_hw": "硬件未知（日志旁没有写明队列的调度器摘要，即作业的 -o 文件）：这些运行可能在不同的 GPU "
                           "上，互不作基准，也不与其他硬件相比，加速比、并行效率与相对成本为待填(硬件未知)。",
        # Runs whose ledger state is not DONE: their figures are what they logged so far, or before they stopped.
        "note_state_active": "{cards} `{run}`：状态 {state}，运行尚未结束，所列为目前为止的数据。",
        "note_state_ended": "{cards} `{run}`：状态 {state}（未确认正常结束），所列为它停止前日志中的数据。",
        "note_mem": "显存占用 = rank 0 上 PyTorch 分配的峰值（torch.cuda.max_memory_allocated），"
                    "低于 nvidia-smi 所见：后者还含分配器缓存与 CUDA 上下文。",
        "mem_cpu": "内存 {v} GiB（CPU RSS）",
        "note_mem_cpu": "CPU 运行没有显存：其显存占用栏为 rank 0 进程的常驻内存峰值（RSS，含 Python 与数据），"
                        "不是 torch.cuda.max_memory_allocated，不能与 GPU 行相比。",
        "note_mem_reserved": "括号内为分配器保留的峰值（torch.cuda.max_memory_reserved），更接近 nvidia-smi"
                             "（仍不含 CUDA 上下文）。",
        "note_wall_summary": "本次实测GPU小时的墙钟取自调度器作业摘要（作业实际开始到结束）：{rows}",
        "note_wall_script": "本次实测GPU小时的墙钟取自作业脚本自记的开始/结束时间（job.wall）：{rows}",
        "note_wall_ledger": "本次实测GPU小时的墙钟取自账本记录的开始/结束时间（轮询所见，误差取决于轮询间隔）：{rows}",
        "note_wall_log": "本次实测GPU小时的墙钟取自训练日志自计时长（不含启动与收尾，偏小）：{rows}",
        "note_cost_batch": "各配置 global_batch 不同：相同步数处理的样本数不同，比较相同数据量请看表一的加速比。",
        # Which run fills a cell when several compete for it, and what a row is compared with (tables 2 and hw).
        "pick_rule": "同一格有多个运行时只取一个，依次优先：有吞吐、正常结束（DONE）、每卡 batch（local batch）最小、"
                     "梯度累积步数最少、训练步数最多、run id 最大；不在并行方式之间取舍（汇总表每种并行方式各占一行，"
                     "表二先只看本表共同设置的运行，含并行方式）。",
        "pick_cell": "{cell}：取 {run}，未用 {others}",
        "hw_same_batch": "每行的加速比只与同一每卡 batch（local batch）与梯度累积、同并行方式、同精度、同帧数与分辨率、"
                         "同模型形状的 {hw} 运行相比；{hw} 的每个 batch 与并行方式各为 1.0(基准)。",
        "hw_base_absent": "本表没有 {hw} 的运行，加速比记为待填(缺{hw}基准)：用 --hw-baseline 以本表的另一种硬件为 "
                          "1.0（本表有：{have}），如 xdimo-jobs collect --table hw --hw-baseline {first}。",
        "hw_no_batch_base": "{row} `{run}`：{hw} 没有每卡 batch={batch} 的同负载运行（只有 bs={have}），"
                            "不跨 batch 比较。",
        "hw_no_parallel_base": "{row} `{run}`：{hw} 没有{parallel}的同 batch 同负载运行（只有 {have}），"
                               "不跨并行方式比较。",
        "hw_params_clip": "模型参数按各行运行自身的片段（{clips}）计算；表二按用户表格的 16 帧、256² 计："
                          "固定的 sin-cos 位置/时间嵌入随片段变化，同一模型在两表中的参数量略有不同。",
        "hw_doubtful_base": "基准 {row} `{run}` 存疑（{why}）：以它为基准的加速比标 ⚠，仅供参考，--fill 不写入；"
                            "{hw} 没有每卡 batch={batch}、正常结束（DONE）、稳态多于 1 个区间且独占 CPU 核的"
                            "同负载运行可作基准。",
        "t2_setup": "各行取同一设置的运行：{setup}（每卡 batch、精度、帧数×分辨率；梯度累积、FSDP 或多机另行写明，"
                    "未写即不累积、单卡或 DDP 单机），模型之间才可比。",
        "t2_off_setup": "{row} `{run}`：没有上述设置的运行，本行为 {setup}，与其他行不可直接比较。",
        "t2_params_basis": "具体参数的参数量统一按用户表格的 16 帧、256² 计（固定的 sin-cos 位置/时间嵌入随片段大小"
                           "变化），不是按本表运行的片段（{clips}）：那样算得的数略有不同。",
        # collect --matrix: every row the matrix plans, those without a run yet 待填.
        "note_grid": "按矩阵 `{matrix}` 的计划列出全部行：{n} 行等待运行结果（{planned} 个尚未提交，"
                     "{waiting} 个已提交、暂无指标），其单元格为待填，不作基准、不进绘图。",
        # A run's own notes (RunRecord.notes: {"key": ..., **args}, rendered by note_text): what collect inferred or
        # assumed about it, or why it has no figures.
        "rec_batch_assumed": "日志中没有每卡 batch：按 1 计",
        "rec_samples_per_rank": "日志的 Samples/s 是每个 rank 的值：global = 每 rank × 卡数",
        "rec_gpus_ranks": "卡数按 {n} 条 'Starting rank' 输出计",
        "rec_gpus_slots": "卡数由 {slots} 个 CPU 槽 ÷ 每卡 {per} 个推得",
        "rec_gpus_unknown": "日志中没有卡数",
        "rec_moe_identified": "MoE 布局 {moe} 由日志所记的 {params} 个参数识别（top-k 按用户的命名假定）",
        "rec_moe_unknown": "日志提到 MoE 但没写布局：FLOPs 按稠密计",
        "rec_precision_tf32": "精度：fp32 权重 + TF32 矩阵乘（Latte 的默认）→ 按 TF32 峰值",
        "rec_relogged": "日志从检查点重启：被放弃那次的 {n} 行 step 已丢弃，保留重启后的数据",
        "rec_no_speed": "日志的 {n} 行 step 没有速度（{spellings}），无吞吐",
        "rec_no_speed_fields": "日志的 {n} 行 step 没有速度（{spellings}），无吞吐；未读取的字段：{fields}",
        "rec_stray_one": "1 行带指标字段但没有 '(step=N)' 前缀，未读取（该行：'{example}'）",
        "rec_stray": "{n} 行带指标字段但没有 '(step=N)' 前缀，均未读取（第一行：'{example}'）",
        "rec_run_json": "run.json：{field} {value} 不可用，已忽略",
        "rec_metrics_unusable": "metrics.jsonl 有 {n} 行读不出吞吐（如 {line}），故无数据",
        "rec_metrics_malformed": "{file}：{n} 行不是有效的 JSON（第一处在第 {line} 行），已跳过；"
                                 "数据取自其余 {good} 行",
        "rec_run_json_bad": "{file} 无法读取（{why_zh}），已忽略：卡数、batch、模型等取自矩阵的计划，"
                            "不是运行自己的记录",
        # A resubmitted run whose latest attempt has no figures: an earlier attempt's (logs/<run>/attempt-N/).
        "rec_earlier_used": "所列为第 {n} 次尝试（作业 {job}，状态 {state}）的数据（{dir}）；"
                            "第 {now} 次尝试（作业 {now_job}）以 {now_state} 结束，没有稳态指标",
        "rec_earlier_waiting": "第 {now} 次尝试状态 {now_state}，暂无稳态指标；"
                               "第 {n} 次尝试（作业 {job}，状态 {state}）的数据在 {dir}，未计入本表",
        # A job given a pool of GPUs whose torch saw no CUDA (hardware_label.cpu_in_gpu_pool): labelled CPU.
        "rec_cpu_in_gpu_pool": "作业分到 GPU 队列 {pool}，却在 CPU 上训练（run.json 的 gpu_name 为 cpu：作业里 "
                               "torch 没有看到 CUDA，如装了 CPU 版 torch、驱动不匹配）：记为 CPU，不是 {hw} 的数据，"
                               "不作 {hw} 的基准，--fill 也不写入 {hw} 的行",
        "rec_shared_cores": "与 {others} 同时在本机 CPU 上训练：进程争用同一批 CPU 核，吞吐与加速比偏低"
                            "（逐个运行方得真实数值）",
        "rec_peak_table": "run.json 的 peak_tflops 为 null 或缺失：MFU 的峰值取自 xdimo/hardware.py（{gpu} {prec} "
                          "稠密峰值 {peak} TFLOP/s）",
        "rec_peak_table_bf16": "run.json 的 peak_tflops 为 null 或缺失：MFU 的峰值取自 xdimo/hardware.py（{gpu} {prec} "
                               "稠密峰值 {peak} TFLOP/s）；该运行未记精度，按 BF16 计",
        "rec_one_interval": "⚠ 稳态数据只有 1 个区间（除去预热 {w} 个）：没有波动可言，无从判断是否已稳定；"
                            "多跑一些步数方得可靠数值",
        "runs_attempt": "第 {n} 次尝试的数据",
        # --table runs: seed 001's 历史实验（参考）, one row per run.
        "runs_title": "历史实验（参考）",
        "runs_cols": "硬件|GPU数|global_batch|Steps/s|Achieved TFLOPs/s|MFU|备注",
        "note_achieved": "Achieved TFLOPs/s 为全部卡合计的实际算力 = samples/s × 每样本训练 FLOPs（与本表旧行同义）。",
        "runs_intervals": "{n} 个区间（除去预热 {w} 个）",
        "runs_wide": "⚠ 波动大 {spread}",
        "runs_planned": "未提交",
        "runs_no_metrics": "暂无指标（状态 {state}）",
        # --fill: the note under a table of the user's sheet that it wrote MFU cells into ({rows}, {peaks}: lists
        # joined by fill_sep; fill/note.py reads a note back through this text, so a second --fill updates, not adds).
        "fill_mfu_note": "注（xdimo-jobs --fill）：MFU 列中由 xdimo-jobs 填入的单元格（{rows}）= samples/s × "
                         "每样本训练 FLOPs ÷ (卡数 × 所用精度的稠密峰值)，不截断；FLOPs 为模型的精确解析计数"
                         "（xdimo/train/flops.py），所用峰值：{peaks}。{others}",
        # said only where the table's MFU column holds figures fill did not write (fill/note.py)
        "fill_mfu_others": "该列其余 MFU 不是 xdimo-jobs 填写的，保持原来的算法，不能与上述数值直接比较。",
        "fill_peak": "{hw} {prec} {peak} TFLOP/s",
        "fill_sep": "、",
        # Plots: the tables' terms where a table has one (加速比(按Samples/s), 并行效率(%), 卡数, 模型).
        "plot_gpus": "卡数",
        "plot_ideal": "理想加速比（= 卡数）",
        "plot_ideal_n": "理想（= 卡数 ÷ {n}）",
        "plot_speedup_y_n": "加速比(按Samples/s，相对基准运行)",
        "plot_speedup_y": "加速比(按Samples/s)",
        "plot_speedup_title": "加速比与理想加速比（迭代相同数据量）",
        "plot_ideal_eff": "理想（100%）",
        "plot_eff_y": "并行效率(%)",
        "plot_eff_title": "并行效率 = 加速比 ÷ 卡数",
        "plot_eff_title_n": "并行效率 = 加速比 ÷ 理想加速比",
        "plot_no_peak": "CPU 运行无 GPU 峰值：MFU 不适用",
        "plot_no_peak_hw": "{hw} 的峰值未知：MFU 无法计算",
        "plot_no_peak_prec": "{hw} 没有 {prec} 张量核心：无 {prec} 峰值，MFU 无法计算",
        "plot_no_flops": "模型每样本 FLOPs 未知：MFU 无法计算",
        "plot_peak_unknown": "峰值未知",
        "plot_no_prec_peak": "无 {prec} 峰值",
        "plot_na": "—",
        "plot_mfu_y": "MFU（占所用精度稠密峰值的 %）",
        "plot_mfu_title": "各模型 MFU",
        "plot_sps_y": "吞吐量（Samples/s，全部卡）",
        "plot_sps_title": "各模型 Samples/s",
        "plot_model": "模型",
        "plot_step": "步数（优化器步）",
        "plot_loss_y": "训练损失（日志原值，无单位）",
        "plot_loss_title": "各运行的训练损失",
    },
    "en": {
        "tbd": "TBD",
        "no_base_hw": "TBD (no {hw} baseline)",
        "no_base_n": "TBD (no {n}-GPU baseline)",
        "baseline": "1.0 (baseline)",
        "no_base_unknown_hw": "TBD (unknown hardware)",
        "single": "single GPU",
        "one_node": "{p}, 1 node",
        "n_nodes": "{p}, {n} nodes",
        "na": "—",
        "logged": "logged {v}",
        "active": "active {v}",
        "dense": "dense",
        "experts": "{n} experts, top_k={k}",
        "sep": "; ",
        "per_gpu": "TFLOP/s per GPU",
        "t1_title": "Table 1-{letter}: {hw}",
        "t1_cols": "Model|GPUs|Parallelism|Steps/s|Samples/s|MFU|Time for 10k steps (s)|Speedup (by Samples/s)|"
                   "Ideal speedup|Parallel efficiency (%)",
        "t2_title": "Table 2: model size and structure ({setting})",
        "t2_cols": "Model|Structure|Parameters (count and key shape)|MFU|Steps/Sec|Steps to converge|FFS FVD",
        "hw_title": "Summary ({gpus}-GPU runs, {model})",
        "hw_cols": "Hardware|Model params|GPU memory|Peak FLOP/s|Token/sample throughput|MFU|Speedup",
        "cost_title": "Cost ({model}, {hw}, {steps} steps)",
        "cost_cols": "Config|Nodes|GPUs|Time for {steps} steps|GPU-hours|Relative cost|Steps per hour|"
                     "GPU-hours of this run",
        "note_t1_derived": "Samples/s = steady Steps/s x global batch (per-GPU batch x GPUs x gradient accumulation; "
                           "the logged Samples/s where the global batch is unknown); time for 10k steps = 10,000 / "
                           "steady Steps/s, projected from the steady rate, not measured (start-up, warm-up and "
                           "evaluation left out).",
        "note_throughput": "Token/sample throughput: samples/s = steady Steps/s x global batch (all GPUs); tokens/s = "
                           "samples/s x {tokens:,} tokens per sample ({frames} frames x ({size}/8/patch {patch})^2 = "
                           "{frames} x {per_frame}, counted from the model and clip shape, not logged).",
        "note_throughput_logged": "Token/sample throughput: samples/s = steady Steps/s x global batch (all GPUs); "
                                  "tokens/s is the logged steady figure (tokens per sample unknown for this model).",
        "note_params": "Model params = every parameter, counted exactly from the model's configuration (MoE: all "
                       "experts; the fixed sin-cos position/time embeddings included).",
        "note_steady": "Steady state: median over the log intervals after warm-up; spread = (P90-P10)/median, "
                       "flagged ⚠ above {wide}.",
        "note_row": "{cards} `{run}`: {n} intervals ({w} warm-up excluded), spread {spread}{flag}",
        "note_row_state": "{cards} `{run}`: no metrics yet (state {state})",
        "note_row_warmup": "{cards} `{run}`: only warm-up intervals ({w}), no steady figure yet: no baseline, "
                           "speedup or MFU (the Steps/s cell shows the last warm-up interval's reading, for "
                           "reference only)",
        "warmup_only": "TBD (warm-up only: {v})",
        "runs_warmup": "only warm-up intervals ({w}), no steady figure yet",
        "note_rerun": "{cards} `{run}`: the same {n} GPUs as the baseline `{base}` (a rerun), not a scaling point: "
                      "speedup and efficiency are —.",
        "note_superlinear": "{cards} `{run}`: parallel efficiency {eff} is above 100% (superlinear: possible but "
                            "rare): check its batch, steady intervals and hardware against the baseline `{base}`.",
        "note_wide": " ⚠ wide spread",
        "note_doubtful_base": "Baseline {cards} `{run}` is doubtful ({why}): the figures against it (speedup, "
                              "efficiency and those from them) are marked ⚠, for reference only; this workload has "
                              "no {n}-GPU run that ended DONE, had more than one steady interval and trained alone to "
                              "be the baseline.",
        "doubt_state": "state {state}, no normal end on record",
        "doubt_contended": "it shared this machine's CPU cores with another run, so its throughput is understated",
        "doubt_one_interval": "its steady figure rests on one interval, too few to tell whether it was steady",
        "doubt_sep": "; ",
        "note_mfu": "MFU = samples/s x train FLOPs per sample / (GPUs x dense peak of the precision run); "
                    "never clamped.",
        "note_peak": "{gpu}: {prec} peak {peak} TFLOP/s",
        "note_cpu": "CPU runs have no GPU peak: MFU shown as —.",
        "note_no_peak_prec": "{hw} has no {prec} tensor cores, so no {prec} peak: MFU shown as —.",
        "note_no_peak_hw": "Peak of {hw} unknown (xdimo/hardware.py has no peak for this GPU; run.json's "
                           "peak_tflops is null): no MFU, shown as TBD.",
        "note_legacy_mfu": "In brackets: the MFU the old log reported (FP32 peak, multiply-adds, clamped at "
                           "100%), for comparison only.",
        "note_speedup": "Speedup = Samples/s of this config / Samples/s of the 1-GPU run of the same model on the "
                        "same hardware (same amount of data); ideal = GPUs; efficiency = speedup / ideal.",
        "note_s2": "The user's sheet lists S/2 as \"75.14M; no MoE\": 75,140,000 is S/2 with a 4-expert MoE in "
                   "every block (all experts counted); dense S/2 is {dense} (fixed sin-cos position/time "
                   "embeddings included). This table's S/2 row is the dense S/2; S/2 4E2A has a row of its own "
                   "only where this setting has a run of it.",
        "note_eval": "Steps to converge and FFS FVD are filled once evaluation has run (logs/<run>/eval.json).",
        "note_hw": "Speedup relative to {hw} = 1.0 (by Samples/s); peaks are dense, at the precision run.",
        "note_cost": "Time = {steps} / steady Steps/s (projected from the steady rate, not measured); GPU-hours = "
                     "GPUs x time; relative cost = GPU-hours / the baseline row's, {base} = 1.00x (baseline); steps "
                     "per hour = steady Steps/s x 3600; GPU-hours of this run = GPUs x the job's actual wall time.",
        "cost_base": "1.00x (baseline)",
        "note_run": "`{run}`: {note}",
        "note_no_base_workload": "{cards} `{run}`: the {n}-GPU runs of this model on this hardware differ in "
                                 "{fields}: no baseline.",
        "note_no_base_batch": "{cards} `{run}`: no {n}-GPU run at per-GPU batch {batch}; the other runs of this "
                              "workload on this hardware are bs={have}, and batches are not compared: speedup and "
                              "efficiency TBD.",
        "note_base_batch": "A 1-GPU baseline must run the same per-GPU (local) batch and gradient accumulation (the "
                           "same batch setup), precision, frames, image size and model shape (depth/hidden/heads); "
                           "where no 1-GPU run does, speedup and efficiency are TBD and a note says why: batches are "
                           "not compared.",
        "note_base_batch_n": "A baseline must run the same per-GPU (local) batch and gradient accumulation, "
                             "precision, frames, image size and model shape (depth/hidden/heads); where no run does, "
                             "speedup and efficiency are TBD and a note says why: batches are not compared.",
        "note_speedup_n": "Speedup = Samples/s of this config / Samples/s of the baseline run of the same model "
                          "on the same hardware (same amount of data); ideal = GPUs / the baseline's GPUs; "
                          "efficiency = speedup / ideal.",
        "note_base_n": "{model}: baseline {base} ({why}): speedup = Samples/s of this config / Samples/s of that "
                       "{n}-GPU run, ideal = GPUs / {n}, efficiency = speedup / ideal, all relative to the {n}-GPU "
                       "baseline, not to 1 GPU.",
        "why_fewest": "no 1-GPU run of this workload: its fewest-GPU run",
        "why_forced": "--baseline-gpus {n}",
        "note_base_missing": "{model}: no {n}-GPU run (--baseline-gpus {n}): speedup and efficiency TBD.",
        "base_sep": ", ",
        "cmp_title": "Compared with {n} GPUs (baseline) ({model}, {hw})",
        "cmp_eff_cols": "Config|Speedup|Time saved|Cost increase|Parallel efficiency",
        "note_cmp_eff": "Baseline {base}, compared for the same amount of data (as table 1): speedup = Samples/s / "
                        "the baseline's; time saved = 1 - 1/speedup; cost increase = (GPUs / {n}) / speedup - 1 (the "
                        "GPU-hours the same data takes, over the baseline's); parallel efficiency = speedup / (GPUs / "
                        "{n}) = 1 / (1 + cost increase), 100% for the baseline. Seed 004's 性价比 (cost-effectiveness) "
                        "stars are a judgement with no definition and are not computed: weigh the speedup against the "
                        "cost increase.",
        "note_cmp_batch": "Global batches differ: this table compares the same data, the table above's time and "
                          "relative cost the same number of steps; the two differ.",
        "note_cmp_batch_base": "{rows}: per-GPU batch {batch}, against {base} of the same batch: batches are not "
                               "compared.",
        "note_cmp_no_batch": "{cards} `{run}`: no {n}-GPU run at per-GPU batch {batch} (the baseline is bs={have}), "
                             "and batches are not compared: this row's comparisons are TBD.",
        "note_cmp_missing": "No {n}-GPU run (--baseline-gpus {n}): comparisons TBD.",
        "note_cost_nobase": "Time = {steps} / steady Steps/s (projected from the steady rate, not measured); "
                            "GPU-hours = GPUs x time; steps per hour = steady Steps/s x 3600; GPU-hours of this run "
                            "= GPUs x the job's actual wall time.",
        "note_unknown_hw": "Unknown hardware (no scheduler summary naming the queue, the job's -o file, beside the "
                           "log): these runs may be on different GPUs, so none is another's baseline nor compared "
                           "with other hardware; speedup, efficiency and relative cost are TBD (unknown hardware).",
        "note_state_active": "{cards} `{run}`: state {state}, still running: figures so far.",
        "note_state_ended": "{cards} `{run}`: state {state} (no normal end on record): figures from what it logged "
                            "before it stopped.",
        "note_mem": "GPU memory = PyTorch's allocated peak on rank 0 (torch.cuda.max_memory_allocated), below "
                    "what nvidia-smi shows: that includes the allocator's cache and the CUDA context.",
        "mem_cpu": "RAM {v} GiB (CPU RSS)",
        "note_mem_cpu": "CPU runs have no GPU memory: their GPU memory cell is rank 0's peak resident set (RSS, "
                        "Python and data included), not torch.cuda.max_memory_allocated; not comparable with GPU "
                        "rows.",
        "note_mem_reserved": "In brackets: the allocator's reserved peak (torch.cuda.max_memory_reserved), closer "
                             "to nvidia-smi (the CUDA context still excluded).",
        "note_wall_summary": "GPU-hours of this run from the scheduler's job summary (actual start to end): {rows}",
        "note_wall_script": "GPU-hours of this run from the job script's own start and end (job.wall): {rows}",
        "note_wall_ledger": "GPU-hours of this run from the ledger's start/end times (as polls saw them, off by "
                            "up to the poll interval): {rows}",
        "note_wall_log": "GPU-hours of this run from the training log's own elapsed time (start-up and the end "
                         "left out, so low): {rows}",
        "note_cost_batch": "Global batches differ: the same number of steps is a different amount of data; "
                           "for the same data compare table 1's speedup.",
        "pick_rule": "Where several runs compete for one cell, one is shown, preferring in turn: a throughput, "
                     "ended DONE, the smallest per-GPU (local) batch, the fewest accumulation steps, the most steps, "
                     "the highest run id; never one parallelism over another (the summary gives each its own row, "
                     "table 2 first keeps the runs at the table's common setup, parallelism included).",
        "pick_cell": "{cell}: shows {run}, left out {others}",
        "hw_same_batch": "Each row's speedup is against the {hw} run at the same per-GPU batch and accumulation, "
                         "parallelism, precision, frames, image size and model shape; each batch's and parallelism's "
                         "{hw} row is 1.0.",
        "hw_base_absent": "No run of this table is on {hw}, so its speedups are TBD (no {hw} baseline): "
                          "--hw-baseline makes another hardware of this table 1.0 (it has: {have}), e.g. "
                          "xdimo-jobs collect --table hw --hw-baseline {first}.",
        "hw_no_batch_base": "{row} `{run}`: {hw} has no run at per-GPU batch {batch} of this workload (only "
                            "bs={have}); batches are not compared with each other.",
        "hw_no_parallel_base": "{row} `{run}`: {hw} has no {parallel} run of this workload at this batch (only "
                               "{have}); parallelisms are not compared with each other.",
        "hw_params_clip": "Model params are counted at the clip each row's run trained on ({clips}), not at the "
                          "sheet's 16 frames at 256² table 2 uses: the fixed sin-cos position/time embeddings grow "
                          "with the clip, so one model's count differs slightly between the two tables.",
        "hw_doubtful_base": "Baseline {row} `{run}` is doubtful ({why}): the speedups against it are marked ⚠, for "
                            "reference only, and --fill does not write them; {hw} has no run of this workload at "
                            "per-GPU batch {batch} that ended DONE, had more than one steady interval and trained "
                            "alone to be the baseline.",
        "t2_setup": "Every row is a run at one setup: {setup} (per-GPU batch, precision, frames×size; accumulation, "
                    "FSDP or several nodes where so, else none, one GPU or DDP on one node), so models compare.",
        "t2_off_setup": "{row} `{run}`: no run at that setup; this row is {setup}, not directly comparable.",
        "t2_params_basis": "Parameter counts are all for the sheet's 16 frames at 256² (the fixed sin-cos "
                           "position/time embeddings grow with the clip), not for the clip these runs trained on "
                           "({clips}), where they differ slightly.",
        "note_grid": "Every row matrix `{matrix}` plans is listed: {n} row(s) wait for runs ({planned} not submitted, "
                     "{waiting} submitted without metrics yet); their cells are TBD and they enter no baseline or "
                     "plot.",
        "rec_batch_assumed": "local batch not in the log: assumed 1",
        "rec_samples_per_rank": "the log's Samples/s is per rank: global = per rank x world size",
        "rec_gpus_ranks": "GPUs counted from {n} 'Starting rank' prints",
        "rec_gpus_slots": "GPUs inferred from {slots} CPU slots / {per} per GPU",
        "rec_gpus_unknown": "GPU count not in the log",
        "rec_moe_identified": "MoE layout {moe} identified from {params} logged parameters (top-k assumed as in "
                              "the user's naming)",
        "rec_moe_unknown": "the log mentions MoE but not its layout: FLOPs counted as dense",
        "rec_precision_tf32": "precision: fp32 weights with TF32 matmuls (Latte's default) -> TF32 peak",
        "rec_relogged": "the log restarts from a checkpoint: {n} step line(s) of the abandoned attempt dropped, the "
                        "later attempt's figures kept",
        "rec_no_speed": "the log's {n} step lines carry no speed ({spellings}), so no throughput",
        "rec_no_speed_fields": "the log's {n} step lines carry no speed ({spellings}), so no throughput; fields not "
                               "read: {fields}",
        "rec_stray_one": "1 line carries metric fields but no '(step=N)' prefix, so none was read (first: "
                         "'{example}')",
        "rec_stray": "{n} lines carry metric fields but no '(step=N)' prefix, so none was read (first: '{example}')",
        "rec_run_json": "run.json: {field} {value} is not usable; ignored",
        "rec_metrics_unusable": "metrics.jsonl has {n} line(s) with no throughput to read (e.g. {line}): no "
                                "figures from it",
        "rec_metrics_malformed": "{file}: {n} line(s) are not valid JSON (first at line {line}), skipped; the "
                                 "figures are from the other {good} line(s)",
        "rec_run_json_bad": "{file} could not be read ({why}): ignored, the GPUs, batch, model etc. are the "
                            "matrix's plan, not the run's own record",
        "rec_earlier_used": "figures of attempt {n} (job {job}, state {state}; {dir}): attempt {now} (job "
                            "{now_job}) ended {now_state} without steady figures",
        "rec_earlier_waiting": "attempt {now} is {now_state}, no steady figures yet; attempt {n}'s figures (job {job}, "
                               "state {state}) are in {dir}, not in this table",
        "rec_cpu_in_gpu_pool": "the job was given GPU pool {pool} but trained on the CPU (run.json's gpu_name is "
                               "\"cpu\": torch saw no CUDA in the job, e.g. a CPU-only torch or a driver "
                               "mismatch): labelled CPU, not a {hw} figure, no {hw} baseline, and --fill writes it "
                               "into no {hw} row",
        "rec_shared_cores": "trained on this machine's CPU at the same time as {others}: the processes shared its "
                            "cores, so throughput and speedup are understated (`xdimo-jobs demo --matrix NAME` "
                            "runs a matrix one run at a time)",
        "rec_peak_table": "run.json's peak_tflops is null or missing: MFU takes xdimo/hardware.py's peak ({gpu} "
                          "{prec} dense {peak} TFLOP/s)",
        "rec_peak_table_bf16": "run.json's peak_tflops is null or missing: MFU takes xdimo/hardware.py's peak ({gpu} "
                               "{prec} dense {peak} TFLOP/s); the run does not say its precision, BF16 is assumed",
        "rec_one_interval": "⚠ steady figures from one interval only ({w} warm-up excluded): no spread to judge them "
                            "by; a longer run gives a figure to trust",
        "runs_attempt": "figures of attempt {n}",
        "runs_title": "Runs (reference)",
        "runs_cols": "Hardware|GPUs|Global batch|Steps/s|Achieved TFLOP/s|MFU|Notes",
        "note_achieved": "Achieved TFLOP/s is all GPUs together = samples/s x train FLOPs per sample (as the "
                         "table's older rows).",
        "runs_intervals": "{n} intervals ({w} warm-up excluded)",
        "runs_wide": "⚠ wide spread {spread}",
        "runs_planned": "not submitted",
        "runs_no_metrics": "no metrics yet (state {state})",
        "fill_mfu_note": "Note (xdimo-jobs --fill): the MFU cells xdimo-jobs filled ({rows}) = samples/s x train "
                         "FLOPs per sample / (GPUs x dense peak of the precision run), never clamped; FLOPs are the "
                         "model's exact analytic count (xdimo/train/flops.py); peaks used: {peaks}. {others}",
        "fill_mfu_others": "The column's other MFU cells were not written by xdimo-jobs and keep their own "
                           "definition: do not compare them with these.",
        "fill_peak": "{hw} {prec} {peak} TFLOP/s",
        "fill_sep": ", ",
        "plot_gpus": "GPUs (cards)",
        "plot_ideal": "ideal (= GPUs)",
        "plot_ideal_n": "ideal (= GPUs / {n})",
        "plot_speedup_y_n": "speedup over the baseline run (x, by samples/s)",
        "plot_speedup_y": "speedup over 1 GPU (x, by samples/s)",
        "plot_speedup_title": "Speedup vs ideal, same amount of data",
        "plot_ideal_eff": "ideal (100%)",
        "plot_eff_y": "parallel efficiency (%)",
        "plot_eff_title": "Parallel efficiency = speedup / GPUs",
        "plot_eff_title_n": "Parallel efficiency = speedup / ideal speedup",
        "plot_no_peak": "no GPU peak (CPU runs): MFU not applicable",
        "plot_no_peak_hw": "peak of {hw} unknown: no MFU",
        "plot_no_peak_prec": "{hw} has no {prec} tensor cores: no {prec} peak, no MFU",
        "plot_no_flops": "model FLOPs per sample unknown: no MFU",
        "plot_peak_unknown": "peak unknown",
        "plot_no_prec_peak": "no {prec} peak",
        "plot_na": "n/a",
        "plot_mfu_y": "MFU (% of dense peak at the precision run)",
        "plot_mfu_title": "MFU by model",
        "plot_sps_y": "throughput (samples/s, all GPUs)",
        "plot_sps_title": "Samples/s by model",
        "plot_model": "model",
        "plot_step": "step (optimizer steps)",
        "plot_loss_y": "training loss (as logged, no unit)",
        "plot_loss_title": "Training loss per run",
    },
}


def t(lang: str, key: str, **kw: object) -> str:
    text = TEXT[lang][key]
    return text.format(**kw) if kw else text


class Note(str):
    """One of a run's notes (RunRecord.notes): its English text as a plain string (JSON, a log, a test), with the
    key of its text here and the values that fill it, so a table shows it in its own language (note_text). A deep
    copy (RunRecord.to_dict) keeps the key and values."""

    key: str
    args: dict[str, Any]

    def __new__(cls, text: str, key: str = "", args: dict[str, Any] | None = None) -> Note:
        self = super().__new__(cls, text)
        self.key, self.args = key, dict(args or {})
        return self


def note(key: str, /, **args: Any) -> Note:
    """A run's note (RunRecord.notes): TEXT["en"][key] as the string, shown in a table's language by note_text."""
    return Note(t("en", key, **args), key, args)


def note_text(lang: str, note: str) -> str:
    """One of a run's notes in ``lang``: a Note's text in that language; any other string as it is."""
    key = getattr(note, "key", "")
    if key in TEXT[lang]:
        return t(lang, key, **note.args)  # type: ignore[attr-defined]
    return str(note)


def columns(lang: str, key: str, **kw: object) -> list[str]:
    return t(lang, key, **kw).split("|")
