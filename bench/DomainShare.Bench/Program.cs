using System.Globalization;

namespace DomainShare.Bench;

/// <summary>
/// Entry point. Without a sub-command: run every figure and print the Markdown table on standard output (progress goes
/// to standard error). The sub-commands are the child processes the figures start: <c>--cold-import</c> and <c>--writer</c>.
/// Exit code 0 when every figure ran and every correctness check held (a timing over its goal is reported, not fatal),
/// 1 when a figure failed, 2 on bad arguments.
/// </summary>
internal static class Program
{
    private const string Usage = """
        usage: DomainShare.Bench [--cold-runs N] [--warm-runs N] [--get-calls N] [--changes N] [--writers N] [--per-writer N]
               DomainShare.Bench --cold-import <configPath>
               DomainShare.Bench --writer <configPath> <writerIndex> <count>
        """;

    private static async Task<int> Main(string[] args)
    {
        try
        {
            return args switch
            {
                [ColdImport.SubCommand, var config] => ColdImport.Run(config),
                [Writer.SubCommand, var config, var index, var count] => Writer.Run(config, Count(index, 0), Count(count, 1)),
                _ => await RunAllAsync(Options.Parse(args)),
            };
        }
        catch (ArgumentException ex)
        {
            Console.Error.WriteLine(ex.Message);
            Console.Error.WriteLine(Usage);
            return 2;
        }
        catch (BenchException ex)
        {
            // A child process's failure: the parent shows this text with the figure.
            Console.Error.WriteLine(ex.Message);
            return 1;
        }
    }

    private static async Task<int> RunAllAsync(Options options)
    {
        if (!File.Exists(ModuleHost.ModuleManifest))
        {
            Console.Error.WriteLine($"The staged module is missing: {ModuleHost.ModuleManifest}. Build first (bench/run.sh does).");
            return 1;
        }
        var work = Directory.CreateTempSubdirectory("domainshare-bench-").FullName;
        try
        {
            ModuleHost.IsolateEnvironment(work);
            var report = new Report();
            Progress.Say($"module {ModuleHost.ModuleManifest}; work folder {work}");

            using var runspace = ModuleHost.OpenRunspace();
            ModuleHost.ImportModule(runspace);
            var small = Path.Combine(work, "small", "domainshare.yaml");
            ModuleHost.Run(runspace, """
                param($ConfigPath)
                $null = Initialize-DomainShare -ServerName bench.example.com -ConfigPath $ConfigPath
                'mx2.example.net', 'mx3.example.net:2525', 'mx4.example.org' | Add-DomainSharePeer -ConfigPath $ConfigPath
                """, ("ConfigPath", small));
            var large = Path.Combine(work, "large", "domainshare.yaml");
            var largeText = PeerListFigures.CreateConfiguration(runspace, large, options.Peers);

            Progress.Say($"figure 1a: {options.ColdRuns} fresh processes");
            await ImportFigures.ColdAsync(report, small, options.ColdRuns);
            Progress.Say($"figure 1b: {options.WarmRuns} fresh runspaces in this process");
            ImportFigures.Warm(report, small, options.WarmRuns);
            Progress.Say($"figure 2: {options.GetCalls} calls, {options.Changes} changes of the file");
            PeerListFigures.Measure(report, runspace, large, largeText, options.Peers, options.GetCalls, options.Changes);
            Progress.Say($"figure 3: {options.Writers} writer processes x {options.PerWriter} peers");
            await ParallelWriterFigures.MeasureAsync(report, runspace, Path.Combine(work, "writers", "domainshare.yaml"),
                options.Writers, options.PerWriter);

            Console.Out.Write(report.ToMarkdown());
            return report.Failed ? 1 : 0;
        }
        catch (BenchException ex)
        {
            Console.Error.WriteLine("Bench setup failed: " + ex.Message);
            return 1;
        }
        finally
        {
            try { Directory.Delete(work, recursive: true); }
            catch (IOException ex) { Progress.Say($"could not delete {work}: {ex.Message}"); }
        }
    }

    private static int Count(string text, int min)
        => int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n >= min && n <= 100_000
            ? n : throw new ArgumentException($"'{text}' is not a count from {min} to 100000.");

    private sealed record Options(int ColdRuns, int WarmRuns, int GetCalls, int Changes, int Writers, int PerWriter)
    {
        /// <summary>Peers in the configuration of figure 2.</summary>
        public int Peers => 1000;

        public static Options Parse(string[] args)
        {
            var o = new Options(ColdRuns: 5, WarmRuns: 20, GetCalls: 30, Changes: 10, Writers: 10, PerWriter: 100);
            for (int i = 0; i < args.Length; i += 2)
            {
                if (i + 1 >= args.Length) throw new ArgumentException($"'{args[i]}' needs a value.");
                int n = Count(args[i + 1], 1);
                o = args[i] switch
                {
                    "--cold-runs" => o with { ColdRuns = n },
                    "--warm-runs" => o with { WarmRuns = n },
                    "--get-calls" => o with { GetCalls = n },
                    "--changes" => o with { Changes = n },
                    "--writers" => o with { Writers = n },
                    "--per-writer" => o with { PerWriter = n },
                    _ => throw new ArgumentException($"Unknown option '{args[i]}'."),
                };
            }
            return o;
        }
    }
}
