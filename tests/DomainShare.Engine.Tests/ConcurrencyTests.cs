using System.Collections.Concurrent;

namespace DomainShare.Engine.Tests;

public sealed class ConcurrencyTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public void Concurrent_updates_from_ten_threads_lose_nothing()
    {
        const int threads = 10, perThread = 100;
        string path = _folder.File(Defaults.ConfigFileName);
        new ConfigurationStore(path).Create(new ServerConfiguration { ServerName = "mx1.example.com" }, force: false);

        var failures = new ConcurrentQueue<Exception>();
        using var writersDone = new CountdownEvent(threads);
        int readerLoads = 0;
        var reader = new Thread(() =>
        {
            // A reader beside the writers always sees a whole, valid file with a growing peer list.
            var store = new ConfigurationStore(path);
            int last = 0;
            try
            {
                while (!writersDone.IsSet)
                {
                    int count = store.Load().Peers.Count;
                    if (count < last) throw new InvalidOperationException($"peer count went back from {last} to {count}");
                    last = count;
                    readerLoads++;
                    Thread.Sleep(20); // leave the CPU to the writers; this checks the readers' view, not their speed
                }
            }
            catch (Exception ex) { failures.Enqueue(ex); }
        });
        var writers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
        {
            try
            {
                var store = new ConfigurationStore(path); // each thread its own store, as separate cmdlet calls would have
                for (int i = 0; i < perThread; i++)
                {
                    var peer = PeerCatalog.Create($"peer-{t}-{i}.example.net", 4069 + t, null, enabled: true);
                    store.Update(c => PeerCatalog.Add(c, peer, replace: false));
                }
            }
            catch (Exception ex) { failures.Enqueue(ex); }
            finally { writersDone.Signal(); }
        })).ToList();

        reader.Start();
        writers.ForEach(w => w.Start());
        writers.ForEach(w => w.Join());
        reader.Join();

        Assert.True(failures.IsEmpty, string.Join("\n", failures.Select(f => f.GetType().Name + ": " + f.Message)));
        Assert.True(readerLoads > 0);
        var final = ConfigurationYaml.Read(File.ReadAllText(path), path);
        Assert.Equal(threads * perThread, final.Peers.Count);
        var expected = Enumerable.Range(0, threads).SelectMany(t => Enumerable.Range(0, perThread).Select(i => $"peer-{t}-{i}.example.net"));
        Assert.Equal(expected.Order(), final.Peers.Select(p => p.Name).Order());
        Assert.All(final.Peers, p => Assert.Equal(4069 + int.Parse(p.Name.Split('-')[1]), p.MingerPort));
        Assert.Equal([Defaults.ConfigFileName, Defaults.ConfigFileName + ".lock"], _folder.FileNames());
    }
}
