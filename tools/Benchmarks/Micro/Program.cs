using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Kayak.Micro;

// Hot-path microbenchmarks (issue 6). Default: a short in-process job (3 warmup + 5 measured iterations), which is
// what this 2-core shared machine can afford; pass --job default (BenchmarkDotNet's own switch) for a full run.
// In-process also avoids building a generated project under the repo's TreatWarningsAsErrors props.
var config = DefaultConfig.Instance
    .AddJob(Job.ShortRun.WithWarmupCount(3).WithIterationCount(5).WithLaunchCount(1)
        .WithToolchain(InProcessEmitToolchain.Instance).AsDefault())
    .AddDiagnoser(MemoryDiagnoser.Default)
    .AddColumn(new ThroughputColumn())
    .WithOptions(ConfigOptions.JoinSummary);
BenchmarkSwitcher.FromAssembly(typeof(ThroughputColumn).Assembly).Run(args, config);
