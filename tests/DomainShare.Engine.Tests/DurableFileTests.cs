using System.Buffers.Binary;

namespace DomainShare.Engine.Tests;

public sealed class DurableFileTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    /// <summary>Version n: an 8-byte header holding n, then a body whose length and every byte depend on n.</summary>
    private static byte[] Version(int n)
    {
        var bytes = new byte[8 + 64 * 1024 + (n % 7) * 9_973];
        BinaryPrimitives.WriteInt64LittleEndian(bytes, n);
        bytes.AsSpan(8).Fill((byte)(n % 251));
        return bytes;
    }

    private static bool IsWhole(byte[] read)
    {
        if (read.Length < 8) return false;
        int n = (int)BinaryPrimitives.ReadInt64LittleEndian(read);
        return n >= 0 && read.AsSpan().SequenceEqual(Version(n));
    }

    [Fact]
    public void A_reader_sees_the_old_or_the_new_content_never_a_mix()
    {
        string path = _folder.File("state.bin");
        DurableFile.WriteAllBytes(path, Version(0));
        const int writes = 300;
        var reads = 0;
        var torn = new List<string>();
        using var done = new ManualResetEventSlim();
        var reader = new Thread(() =>
        {
            int last = 0;
            while (!done.IsSet)
            {
                var read = File.ReadAllBytes(path);
                if (!IsWhole(read)) { torn.Add($"torn read of {read.Length} bytes"); break; }
                int n = (int)BinaryPrimitives.ReadInt64LittleEndian(read);
                if (n < last) { torn.Add($"version went back from {last} to {n}"); break; }
                last = n;
                reads++;
            }
        });
        reader.Start();
        for (int i = 1; i <= writes; i++) DurableFile.WriteAllBytes(path, Version(i));
        done.Set();
        reader.Join();

        Assert.Empty(torn);
        Assert.True(reads > 0);
        Assert.Equal(Version(writes), File.ReadAllBytes(path));
        Assert.Equal(["state.bin"], _folder.FileNames());
    }

    [UnixFact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void WriteAllBytes_sets_the_requested_mode()
    {
        string path = _folder.File("secret.bin");
        DurableFile.WriteAllBytes(path, [1, 2, 3], UnixFileMode.UserRead | UnixFileMode.UserWrite);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.Equal([1, 2, 3], File.ReadAllBytes(path));
    }

    [Fact]
    public void A_failed_write_leaves_the_old_file_and_no_temporary_file()
    {
        string path = _folder.File("state.bin");
        DurableFile.WriteAllBytes(path, [1, 2, 3]);
        // The target is now a folder: the rename fails after the temporary file was written.
        string blocked = _folder.File("blocked");
        Directory.CreateDirectory(blocked);
        Assert.ThrowsAny<IOException>(() => DurableFile.WriteAllBytes(blocked, [4, 5, 6]));
        Assert.Equal(["state.bin"], _folder.FileNames());
        Assert.Equal([1, 2, 3], File.ReadAllBytes(path));
    }
}
