"""A tiny PySpark application that never ends on its own: it starts PySpark's Python workers (a
Python UDF), says READY, then waits, so a test can kill it and check the whole tree is gone."""

import time

from pyspark.sql import SparkSession


def main() -> None:
    spark = SparkSession.builder.getOrCreate()
    spark.sparkContext.parallelize(range(4), 2).map(lambda x: x * 2).collect()
    print("LIVY_STANDIN_TEST_READY", flush=True)
    while True:
        time.sleep(60)


if __name__ == "__main__":
    main()
